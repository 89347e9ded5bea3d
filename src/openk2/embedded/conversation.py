"""Conversational chats for the embedded model: greetings, "what can you do", who made it,
thanks, goodbyes, out-of-scope requests and general questions, each answered briefly and
honestly, plus tool tasks asked where no tools are declared.

The model was trained only on tool tasks, so any other request made it start a tool call. These
chats teach it to answer such requests with one of a few short fixed sentences, in the contexts
it is served in (the client system prompt and the four tool schemas, as the web page's Tools
mode sends them, or no system prompt and no tools, as its Chat mode does), and to go back to
its tools on the next real task. A request without declared tools is always answered in plain
text. Requests are composed from word pools, seeded, in many phrasings (the model is small:
what makes it tell small talk from a task is variety, not any one sentence);
`HELDOUT_PROMPTS` are never generated (see there).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT

_CAN = "I can do arithmetic, read workspace files and use a key-value store."
CAPABILITIES = "I'm openk2, a small demo model. " + _CAN
GREETING = "Hello! " + CAPABILITIES
HELP = _CAN + " Try: What is 12*7?"
MAKER = "I was trained by the openk2 project. I'm a small demo model."
SIZE = "I'm a small demo model of about 10 million parameters."
CANNOT = "Sorry, I can't do that. " + _CAN.replace("I can", "I can only")
UNKNOWN = "Sorry, I don't know. " + _CAN.replace("I can", "I can only")
NEED_TOOLS = "I need my tools for that, and none are enabled here."
WELCOME = "You're welcome!"
GOODBYE = "Goodbye!"
FINE = "I'm fine, thanks!"

TOPICS = ["the ocean", "autumn", "a robot", "friendship", "mountains", "coffee", "the moon",
          "a cat", "love", "winter", "the city", "music", "rain", "a dragon", "history",
          "summer", "the sea", "a dog", "my family", "space", "trees", "birds", "the sun",
          "a river", "time", "dreams", "a horse", "snow", "the forest", "computers", "stars",
          "a train", "flowers", "the night", "my birthday", "pirates", "a castle", "football"]
LANGUAGES = ["French", "Spanish", "German", "Italian", "Japanese", "Chinese", "Russian",
             "Dutch", "Korean", "Arabic", "Greek", "Swedish", "Polish", "Turkish", "Hindi"]
PLACES = ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "New York", "Sydney", "Cairo",
          "Oslo", "Vienna", "Dublin", "Prague", "Seoul", "Toronto", "Chicago", "Boston",
          "Mumbai", "Nairobi", "Lima", "Athens", "Warsaw", "Helsinki", "Zurich"]
COUNTRIES = ["France", "Japan", "Brazil", "Canada", "Egypt", "India", "Kenya", "Mexico",
             "Spain", "Italy", "Germany", "China", "Peru", "Chile", "Norway", "Ghana",
             "Australia", "Argentina", "Turkey", "Vietnam", "Poland", "Sweden"]
WORDS = ["hello", "dog", "house", "water", "friend", "book", "apple", "good night", "bread",
         "thank you", "sun", "tree", "car", "love", "school", "happy birthday", "yes", "no"]
LANGS = ["Python", "JavaScript", "Rust", "Java", "C", "C++", "TypeScript", "Ruby", "PHP",
         "Kotlin", "Swift", "SQL", "Bash", "Haskell"]
PROGRAMS = ["a web scraper", "a to-do app", "a calculator app", "a chat bot", "a game",
            "a REST API", "a sorting function", "a login page", "a unit test", "a parser",
            "a linked list", "a file uploader", "a snake game", "a website"]

GREETINGS = ["Hello", "Hi", "Hey", "Hello there", "Hi there", "Good morning", "Good evening",
             "Good afternoon", "Greetings", "Howdy", "Yo", "Hey openk2", "Hi openk2", "Hiya",
             "Hey there", "Hello openk2", "Sup", "Heya", "Hi again", "Hello again",
             "Good day", "Evening", "Afternoon", "Hey you", "Hola", "Bonjour", "Salut", "Ciao",
             "Hallo", "Hello friend", "Hi friend", "Hey buddy", "Hello world", "Anyone home?",
             "Is anybody here?", "Are you there?", "Hello?", "Is this thing on?",
             "Are you awake?", "Anybody around?", "Hi, is someone there?", "Knock knock",
             "Morning all", "Morning everyone", "Morning, openk2", "Good morning to you",
             "Top of the morning", "Mornin'", "Morning there", "Good morning, friend", "gm",
             "Afternoon all", "Good afternoon to you", "Afternoon, openk2", "Evening all",
             "Good evening to you", "Evening, openk2", "Evening everyone", "Hey, good morning",
             "Hi, good afternoon", "Hello, good evening", "Happy Monday", "Happy Friday",
             "Morning, how are things", "Good morning sunshine", "Rise and shine", "Morning mate",
             "Good morning!", "Morning to you", "Early morning hello", "Hey, morning",
             "Hi, morning", "Morning folks", "Late evening hello", "Good afternoon, openk2"]
ASK_CAPABILITIES = [
    "What can you do?", "What are you able to do?", "What do you do?", "Who are you?",
    "What are you?", "What tools do you have?", "How can you help me?", "What can I ask you?",
    "Introduce yourself.", "What is your name?", "Tell me about yourself.",
    "What are your abilities?", "What kind of model are you?", "Are you an AI?",
    "What model is this?", "What's your name?", "What are you good at?", "What is this?",
    "What can you help with?", "What do you know how to do?", "What are your skills?",
    "Which functions do you have?", "List your tools.", "What tools are available?",
    "Are you a chatbot?", "Are you a robot?", "Are you human?", "Are you ChatGPT?",
    "Are you Kimi?", "Describe yourself.", "What should I ask you?", "What is openk2?",
    "What are you for?", "What's your purpose?", "What can you do for me?",
    "Do you have any tools?", "Can you use tools?", "Can you do math?",
    "Can you read files?", "Can you store values?", "What are your features?",
    "What are your limits?", "What can't you do?", "Show me what you can do.",
]
ASK_MAKER = ["Who created you?", "Who built you?", "Who trained you?", "Who developed you?",
             "What company made you?", "Where do you come from?", "Who is your creator?",
             "Who programmed you?", "Who designed you?", "Which team made you?",
             "Who owns you?", "Are you made by OpenAI?", "Are you from Moonshot?",
             "Who wrote you?", "Who is behind you?", "Who made this model?",
             "Which organization trained you?", "Where were you made?"]
ASK_SIZE = ["How big are you?", "How many parameters do you have?", "How large is this model?",
            "What size are you?", "What architecture are you?", "How smart are you?",
            "Are you a large language model?", "How many layers do you have?",
            "What is your model size?", "Are you a big model?", "How were you trained?"]
ASK_HELP = ["Help", "help", "Help me", "Help!", "I need some help", "Can you help me?",
            "Could you help me?", "Please help", "I have a question", "Can I ask you something?",
            "I'm stuck", "Where do I start?", "How does this work?", "How do I use you?",
            "What should I do?", "Any tips?", "Give me an example.", "What now?",
            "I don't know what to ask.", "Show me an example.", "I need your help",
            "I need assistance", "Need help", "I could use some help", "Help please",
            "I need a hand", "Can you give me a hand?", "I want some help", "need help here",
            "I need help with something", "I need some assistance", "Please, I need help",
            "I require help", "Assist me", "I'm lost", "I'm confused", "Help me out",
            "Some help please", "I need support", "Can you assist me?", "Get me started"]
THANKS = ["Thanks", "Thanks!", "Thank you", "Thank you!", "Thank you very much.", "Thx",
          "Great, thanks!", "Perfect, thank you.", "Thanks a lot!", "Cool, thanks", "Nice, ty",
          "Many thanks", "Thanks a bunch", "Much appreciated", "Cheers", "Ty", "Thank u",
          "Awesome, thank you!", "Thanks for the help", "Thanks, that works", "Merci",
          "Thank you kindly", "I appreciate it", "That's great, thanks", "Thanks buddy",
          "Thank you, you're great", "Wonderful, thanks", "Thanks a million",
          "Thank you for your help.", "Good job, thanks", "Nice work!", "Great job!",
          "Well done", "You're awesome", "That was useful, thanks", "Brilliant, cheers"]
BYES = ["Bye", "Bye!", "Goodbye", "See you", "See you later!", "Good night", "Cya", "Later!",
        "Bye bye", "See ya", "Talk to you later", "I have to go", "Gotta go", "Farewell",
        "Take care", "Catch you later", "That's all for now", "I'm done", "That's all, bye",
        "Have a nice day", "Night!", "See you tomorrow", "Goodbye for now", "I'm leaving",
        "Okay, goodbye", "Alright, bye", "Thanks, bye", "Bye for now", "Adios", "Ciao, bye",
        "So long", "Peace out", "Until next time", "Logging off", "Signing off"]
HOW_ARE_YOU = ["How are you?", "How are you doing?", "How's it going?", "What's up?",
               "How do you feel today?", "Are you OK?", "How have you been?", "How are things?",
               "How do you do?", "How are you today?", "You good?", "How's life?",
               "How is everything?", "What's new?", "How was your weekend?",
               "Are you having a good day?", "How are you feeling?", "Are you happy?",
               "Did you sleep well?", "How's your week?", "How is your morning?",
               "What are you up to?", "Are you busy?", "How's everything going?"]
OUT_OF_SCOPE = [
    "Write a poem about {topic}.", "Write a short story about {topic}.",
    "Compose a song about {topic}.", "Write an essay on {topic}.", "Write a limerick about "
    "{topic}.", "Write a story for kids about {topic}.", "Make up a riddle about {topic}.",
    "Can you write a poem about {topic}?", "Write me a love letter.", "Write a speech about "
    "{topic}.", "Write a blog post about {topic}.", "Draft a cover letter for me.",
    "Translate '{word}' into {lang}.", "How do you say {word} in {lang}?",
    "What is '{word}' in {lang}?", "Translate this to {lang}: {word}.",
    "Can you speak {lang}?", "Teach me some {lang}.",
    "What's the weather in {place}?", "Will it rain in {place} tomorrow?",
    "What's the temperature in {place}?", "Is it sunny in {place}?",
    "What's the forecast for {place} this weekend?", "Is it cold in {place} right now?",
    "Book me a flight to {place}.", "Find a hotel in {place}.", "Book a table for two.",
    "Reserve a restaurant in {place}.", "Get me a train ticket to {place}.",
    "Plan a trip to {place}.", "Find me a cheap flight.", "Call an Uber for me.",
    "Send an email to my boss.", "Call my mother.", "Set an alarm for 7am.",
    "Check my inbox.", "Read my messages.", "Text my friend.", "Set a timer for ten minutes.",
    "Remind me to buy milk.", "Add a meeting to my calendar.", "What's on my calendar?",
    "Search the web for {topic}.", "Open google.com.", "Can you browse the internet?",
    "Look up {topic} online.", "Google {topic} for me.", "Go to youtube.com.",
    "Find me a video about {topic}.", "Download a song for me.",
    "Tell me a joke.", "Tell me a joke about {topic}.", "Summarize today's news.",
    "Tell me a story.", "Tell me a fun fact.", "Make me laugh.", "Tell me a riddle.",
    "Say something nice.", "Sing me a song.", "Entertain me.", "Tell me a bedtime story.",
    "What are the headlines today?", "Who won the game last night?",
    "What's the stock price of Apple?", "How is the stock market today?",
    "What's the score of the match?", "What's the exchange rate of the euro?",
    "Write {lang_code} code that sorts a list.", "Fix my {lang_code} bug.",
    "Write {program} in {lang_code}.", "Can you write {program}?",
    "Help me build {program}.", "Debug this {lang_code} function.",
    "Explain this {lang_code} error.", "Review my code.", "Write a {lang_code} script.",
    "Draw a picture of {topic}.", "Play some music.", "Order a pizza.",
    "Generate an image of {topic}.", "Make a logo for me.", "Show me a photo of {topic}.",
    "Recommend a movie about {topic}.", "Give me a recipe for pancakes.",
    "Recommend a book about {topic}.", "Suggest a good restaurant in {place}.",
    "What should I cook tonight?", "Give me a recipe for {dish}.", "Plan my week.",
    "Give me some life advice.", "Help me with my homework.", "Do my taxes.",
    "Write my essay about {topic}.", "Buy me some shoes.", "Order groceries for me.",
    "Turn on the lights.", "Lock the front door.", "Play a game with me.",
    "Let's play chess.", "Can you see me?", "Can you hear me?", "Remember my birthday.",
    "Could you write me a poem about {topic}?", "Could you write me a song about {topic}?",
    "Would you write me a story about {topic}?", "Write a sonnet about {topic}.",
    "Could you compose a verse about {topic}?", "Tell me something interesting.",
    "Tell me something about {topic}.", "Say something funny.", "Tell me a pun.",
    "Can you code {program} in {lang_code}?", "Could you code {program}?",
    "Can you program {program} in {lang_code}?", "Code me {program} in {lang_code}.",
    "Please write {program} in {lang_code}.", "Please translate '{word}' into {lang}.",
    "Could you translate '{word}' to {lang}?", "Translate '{word}' to {lang}, please.",
    "Can you translate {word} to {lang}?", "Please tell me a joke.",
]
DISHES = ["lasagna", "soup", "a cake", "curry", "tacos", "sushi", "bread", "cookies", "pasta"]
QUESTIONS = [
    "What is the capital of {country}?", "Who is the president of {country}?",
    "What is the population of {place}?", "Who wrote Hamlet?", "Why is the sky blue?",
    "What is the meaning of life?", "Explain {topic} to me.", "What is {topic}?",
    "Who invented the telephone?", "How far is the moon?", "What language is spoken in "
    "{country}?", "When was {place} founded?", "What is quantum physics?",
    "What is the biggest ocean?", "What is the longest river in the world?",
    "What is the largest country?", "What is the highest waterfall?",
    "What is the oldest city in the world?", "What is the fastest animal?",
    "What is the smallest planet?", "What is the deepest lake in the world?",
    "Which is the biggest desert?", "What is the hottest place on Earth?",
    "How tall is Mount Everest?", "How old is the universe?", "How many people live in "
    "{country}?", "Where is {place}?", "In which country is {place}?",
    "What currency does {country} use?", "What is the capital city of {country}?",
    "Who painted the Mona Lisa?", "Who discovered gravity?", "Who was Napoleon?",
    "Who is the richest person?", "Who won the World Cup?", "When did World War II end?",
    "When was the internet invented?", "How does a car engine work?",
    "How do airplanes fly?", "How does the heart work?", "Why do cats purr?",
    "Why is the ocean salty?", "What is photosynthesis?", "What is DNA?",
    "What is the speed of light?", "What is a black hole?", "What causes rain?",
    "What is the boiling point of water?", "How many continents are there?",
    "How many bones are in the human body?", "What is the best programming language?",
    "What is machine learning?", "What is an atom?", "What is democracy?",
    "What is the tallest building?", "Which planet is the largest?",
    "What is the distance to the sun?", "What is the coldest place on Earth?",
    "What time is it?", "What day is it today?", "What year is it?", "What is the date?",
    "Is {topic} good for you?", "Do you believe in ghosts?", "Is there life on Mars?",
    "What do you think about {topic}?", "What is your favourite color?",
    "Do you like {topic}?", "What is your opinion on {topic}?", "What should I name my cat?",
    "What is love?", "Why do we dream?", "What is the best movie ever?",
]
"""General questions: it has no knowledge to answer them from, so it says so."""

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
example, which the greeting + capabilities template can also compose) are never generated:
`exchange` draws again when it composes one of them."""

FAST_PROMPTS = ["hey, anyone there?", "Which tools can you use?", "Thanks so much!",
                "Who made you?", "What is the tallest mountain in the world?",
                "Can you order me a taxi?"]
"""Six of `HELDOUT_PROMPTS` (a greeting, capabilities, thanks, its maker, a general question
and an out-of-scope request) for the quick check in the default test run."""


def _fill(template: str, rng: random.Random) -> str:
    return template.format(topic=rng.choice(TOPICS), lang=rng.choice(LANGUAGES),
                           place=rng.choice(PLACES), country=rng.choice(COUNTRIES),
                           word=rng.choice(WORDS), lang_code=rng.choice(LANGS),
                           program=rng.choice(PROGRAMS), dish=rng.choice(DISHES))


def _variant(text: str, rng: random.Random) -> str:
    """Casing, punctuation and politeness as people type them."""
    roll = rng.random()
    if roll < 0.1:
        text = rng.choice(["please ", "Please ", "hey, ", "ok ", "so ", "um, ", "hmm, "]) + text
    elif roll < 0.15:
        text = text.rstrip("!.?") + rng.choice([" please", ", please?", " pls"])
    roll = rng.random()
    if roll < 0.25:
        return text.lower()
    if roll < 0.4:
        return text.rstrip("!.?") + rng.choice(["", "!", "!!", " :)", "?", "...", " ?"])
    return text


def _greeted(pool: list[str]) -> Callable[[random.Random], str]:
    """A request from `pool`, sometimes after a greeting ("Hi! What can you do?")."""
    def make(rng: random.Random) -> str:
        greet = rng.choice(GREETINGS).rstrip("?") + rng.choice(["! ", ", ", ". "])
        return (greet if rng.random() < 0.35 else "") + rng.choice(pool)
    return make


def _templated(pool: list[str]) -> Callable[[random.Random], str]:
    return lambda rng: _fill(rng.choice(pool), rng)


KINDS: list[tuple[int, Callable[[random.Random], str], str]] = [
    (16, lambda rng: rng.choice(GREETINGS) + rng.choice(["", "!", "."]), GREETING),
    (12, _greeted(ASK_CAPABILITIES), CAPABILITIES),
    (5, _greeted(ASK_MAKER), MAKER),
    (4, _greeted(ASK_SIZE), SIZE),
    (12, _greeted(ASK_HELP), HELP),
    (9, lambda rng: rng.choice(THANKS), WELCOME),
    (7, lambda rng: rng.choice(BYES), GOODBYE),
    (6, _greeted(HOW_ARE_YOU), FINE),
    (24, _templated(OUT_OF_SCOPE), CANNOT),
    (21, _templated(QUESTIONS), UNKNOWN),
]
"""(weight, request maker, answer) of each kind of exchange."""

ANSWERS = frozenset(answer for _, _, answer in KINDS) | {NEED_TOOLS}
_HELDOUT = {p.lower().strip(" !.?:),") for p in HELDOUT_PROMPTS[1:]}


def exchange(rng: random.Random) -> tuple[str, str]:
    """One (request, answer) pair of a random kind, never one of the held-out prompts."""
    _, make, answer = rng.choices(KINDS, weights=[w for w, _, _ in KINDS])[0]
    while True:
        request = _variant(make(rng), rng)
        if request.lower().strip(" !.?:),") not in _HELDOUT:
            return request, answer


def _turns(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """`n` exchanges of small talk as user/assistant messages."""
    turns: list[dict[str, Any]] = []
    for _ in range(n):
        request, answer = exchange(rng)
        turns += [{"role": "user", "content": request}, {"role": "assistant", "content": answer}]
    return turns


def toolless_task(rng: random.Random, tool_chats: list[dict[str, Any]]) -> dict[str, Any]:
    """A tool task's request where no tools are declared: a plain answer, never a call."""
    request = rng.choice(tool_chats)["messages"][1]["content"]
    turns = [{"role": "user", "content": request}, {"role": "assistant", "content": NEED_TOOLS}]
    if rng.random() < 0.3:
        turns = _turns(rng, 1) + turns
    return {"messages": turns}


def conversation_chat(rng: random.Random, tools: list[dict[str, Any]],
                      tool_chats: list[dict[str, Any]]) -> dict[str, Any]:
    """An SFT record: one to three exchanges, with no tools declared (the page's plain chat),
    in the client context, after a finished tool task or before one."""
    turns = _turns(rng, rng.choice([1, 1, 2, 3]))
    roll = rng.random()
    if roll < 0.42:
        return {"messages": turns}  # no system prompt, no tools
    if roll < 0.5 and tool_chats:
        return toolless_task(rng, tool_chats)
    head = [{"role": "system", "content": CLIENT_SYSTEM_PROMPT}]
    if roll < 0.62 and tool_chats:  # a finished tool task, then the small talk
        head = list(rng.choice(tool_chats)["messages"])
    elif roll < 0.8 and tool_chats:  # small talk, then back to a tool task
        task = rng.choice(tool_chats)["messages"]
        return {"messages": [task[0], *turns, *task[1:]], "tools": tools}
    return {"messages": [*head, *turns], "tools": tools}
