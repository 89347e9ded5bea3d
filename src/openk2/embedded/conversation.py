"""Conversational chats for the embedded model: greetings, "what can you do", thanks, goodbyes,
out-of-scope requests and general questions, each answered briefly and honestly.

The model was trained only on tool tasks, so any other request made it start a tool call. These
chats teach it to answer such requests in one short sentence, in the same context it is served
in (the client system prompt and the four tool schemas, or no tools at all, as the web page's
plain chat sends), and to go back to its tools on the next real task. Requests are composed
from word pools, seeded; `HELDOUT_PROMPTS` are written separately (see there).
"""

from __future__ import annotations

import random
from typing import Any

from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT

CAPABILITIES = ("I'm openk2, a small model trained to use tools: I can do integer arithmetic "
                "with a calculator, read text files in the workspace, and get or store values "
                "in a key-value store.")
GREETING = "Hello! " + CAPABILITIES + " Try: What is 12*7?"
CANNOT = ("Sorry, I can't do that. I can only do integer arithmetic, read workspace files "
          "and get or store values in the key-value store.")
UNKNOWN = ("I don't know: I have no general knowledge. I can only do integer arithmetic, read "
           "workspace files and use the key-value store.")
WELCOME = "You're welcome!"
GOODBYE = "Goodbye!"
FINE = "I'm fine, thanks. Ask me to compute something or look up a file or a key."

GREETINGS = ["Hello", "Hi", "Hey", "Hello there", "Hi there", "Good morning", "Good evening",
             "Good afternoon", "Greetings", "Howdy", "Yo", "Hey openk2", "Hi openk2"]
ASK_CAPABILITIES = ["What can you do?", "What are you able to do?", "What do you do?",
                    "Who are you?", "What are you?", "What tools do you have?", "Help",
                    "help", "How can you help me?", "What can I ask you?", "Introduce yourself.",
                    "What is your name?", "Tell me about yourself.", "What are your abilities?",
                    "What kind of model are you?", "Are you an AI?", "What model is this?"]
THANKS = ["Thanks", "Thanks!", "Thank you", "Thank you!", "Thank you very much.", "Thx",
          "Great, thanks!", "Perfect, thank you.", "Thanks a lot!", "Cool, thanks", "Nice, ty"]
BYES = ["Bye", "Bye!", "Goodbye", "See you", "See you later!", "Good night", "Cya", "Later!"]
HOW_ARE_YOU = ["How are you?", "How are you doing?", "How's it going?", "What's up?",
               "How do you feel today?", "Are you OK?"]
TOPICS = ["the ocean", "autumn", "a robot", "friendship", "mountains", "coffee", "the moon",
          "a cat", "love", "winter", "the city", "music", "rain", "a dragon", "history"]
LANGUAGES = ["French", "Spanish", "German", "Italian", "Japanese", "Chinese", "Russian"]
PLACES = ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "New York", "Sydney", "Cairo"]
COUNTRIES = ["France", "Japan", "Brazil", "Canada", "Egypt", "India", "Kenya", "Mexico"]
OUT_OF_SCOPE = [
    "Write a poem about {topic}.", "Write a short story about {topic}.",
    "Compose a song about {topic}.", "Write an essay on {topic}.",
    "Translate 'good morning' into {lang}.", "How do you say thank you in {lang}?",
    "What's the weather in {place}?", "Will it rain in {place} tomorrow?",
    "Book me a flight to {place}.", "Find a hotel in {place}.",
    "Send an email to my boss.", "Call my mother.", "Set an alarm for 7am.",
    "Search the web for {topic}.", "Open google.com.", "Can you browse the internet?",
    "Tell me a joke.", "Tell me a joke about {topic}.", "Summarize today's news.",
    "Write Python code that sorts a list.", "Fix my JavaScript bug.",
    "Draw a picture of {topic}.", "Play some music.", "Order a pizza.",
    "Recommend a movie about {topic}.", "Give me a recipe for pancakes.",
]
QUESTIONS = [
    "What is the capital of {country}?", "Who is the president of {country}?",
    "What is the population of {place}?", "Who wrote Hamlet?", "Why is the sky blue?",
    "What is the meaning of life?", "Explain {topic} to me.", "What is {topic}?",
    "Who invented the telephone?", "How far is the moon?", "What language is spoken in "
    "{country}?", "When was {place} founded?", "What is quantum physics?",
]

HELDOUT_PROMPTS = [
    "Hello! What can you do?", "hey, anyone there?", "Thanks so much!", "Who made you?",
    "Could you write me a haiku about spring?", "What is the weather like in Lisbon today?",
    "Are you able to read my emails?", "Tell me something funny.", "Morning!",
    "What is the tallest mountain in the world?", "I need help", "Can you code a web server "
    "in Go?", "Please translate 'cat' to Portuguese.", "Which tools can you use?",
    "ok bye", "How is your day going?", "Which company built you?", "Give me the latest "
    "football scores.", "Thank you, that was helpful.", "Can you order me a taxi?",
]
"""The 20 conversational prompts checked through the server. All but the first (the issue's own
example, which the greeting + capabilities template also composes) are never generated."""


def _fill(template: str, rng: random.Random) -> str:
    return template.format(topic=rng.choice(TOPICS), lang=rng.choice(LANGUAGES),
                           place=rng.choice(PLACES), country=rng.choice(COUNTRIES))


def _variant(text: str, rng: random.Random) -> str:
    """Casing and punctuation as people type them."""
    roll = rng.random()
    if roll < 0.2:
        return text.lower()
    if roll < 0.3:
        return text.rstrip("!.?") + rng.choice(["", "!", "!!", " :)"])
    return text


def exchange(rng: random.Random) -> tuple[str, str]:
    """One (request, answer) pair of a random kind."""
    kind = rng.randrange(8)
    if kind == 0:
        return _variant(rng.choice(GREETINGS) + rng.choice(["", "!", "."]), rng), GREETING
    if kind == 1:
        greet = rng.choice(GREETINGS) + "! " if rng.random() < 0.4 else ""
        return _variant(greet + rng.choice(ASK_CAPABILITIES), rng), CAPABILITIES
    if kind == 2:
        return _variant(rng.choice(THANKS), rng), WELCOME
    if kind == 3:
        return _variant(rng.choice(BYES), rng), GOODBYE
    if kind == 4:
        return _variant(rng.choice(HOW_ARE_YOU), rng), FINE
    if kind in (5, 6):
        return _variant(_fill(rng.choice(OUT_OF_SCOPE), rng), rng), CANNOT
    return _variant(_fill(rng.choice(QUESTIONS), rng), rng), UNKNOWN


def conversation_chat(rng: random.Random, tools: list[dict[str, Any]],
                      tool_chats: list[dict[str, Any]]) -> dict[str, Any]:
    """An SFT record: one or two exchanges, sometimes around a real tool chat, sometimes with
    no tools declared (the page's plain chat)."""
    request, answer = exchange(rng)
    turns = [{"role": "user", "content": request}, {"role": "assistant", "content": answer}]
    roll = rng.random()
    if roll < 0.2:
        return {"messages": turns}  # no system prompt, no tools
    head = [{"role": "system", "content": CLIENT_SYSTEM_PROMPT}]
    if roll < 0.45 and tool_chats:  # a finished tool task, then the small talk
        head = list(rng.choice(tool_chats)["messages"])
    elif roll < 0.65 and tool_chats:  # small talk, then back to a tool task
        task = rng.choice(tool_chats)["messages"]
        return {"messages": [task[0], *turns, *task[1:]], "tools": tools}
    return {"messages": [*head, *turns], "tools": tools}
