"""Twenty conversational prompts through the server, as the page sends them in Tools mode
(server-side tools declared) and in Chat mode (no tools): the embedded model answers each with
a short sentence, never a tool call, a broken call, tool-call text or special-token markup.
Six of them (`FAST_PROMPTS`) run in the default test run, the other fourteen are slow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.live_app import AppServer, serving_app
from openk2.embedded.conversation import (
    ANSWERS,
    CANNOT,
    CAPABILITIES,
    FAST_PROMPTS,
    FINE,
    GOODBYE,
    GREETING,
    HELDOUT_PROMPTS,
    HELP,
    MAKER,
    UNKNOWN,
    WELCOME,
)
from openk2.embedded.demo import demo_workspace

MAX_ANSWER_CHARS = 300
_GREET = {GREETING, CAPABILITIES, HELP}
_DECLINE = {CANNOT, UNKNOWN, CAPABILITIES}
FITTING = {
    "Hello! What can you do?": _GREET, "hey, anyone there?": _GREET, "Morning!": _GREET,
    "I need help": _GREET, "Which tools can you use?": _GREET,
    "Are you able to read my emails?": _DECLINE, "Who made you?": {MAKER, CAPABILITIES},
    "Which company built you?": {MAKER, CAPABILITIES}, "Thanks so much!": {WELCOME},
    "Thank you, that was helpful.": {WELCOME}, "ok bye": {GOODBYE},
    "How is your day going?": {FINE}, "Could you write me a haiku about spring?": _DECLINE,
    "What is the weather like in Lisbon today?": _DECLINE, "Tell me something funny.": _DECLINE,
    "Can you code a web server in Go?": _DECLINE, "Please translate 'cat' to Portuguese.": _DECLINE,
    "Give me the latest football scores.": _DECLINE, "Can you order me a taxi?": _DECLINE,
    "What is the tallest mountain in the world?": {UNKNOWN, CANNOT},
}
"""The answers that fit each prompt (a greeting gets a greeting or what it can do, thanks get
"you're welcome", a request it cannot serve gets a refusal or what it can do)."""
FITTING_FLOOR = 36
"""Of the 40 answers (20 prompts, two modes), at least this many must fit their prompt: the
shipped model (stage 8) fits 37; it is small and sometimes picks a wrong known sentence
("I need help" gets "You're welcome!" in Chat mode)."""


@pytest.fixture(scope="module")
def live(embedded_model: tuple, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with serving_app(*embedded_model, workspace=demo_workspace(),
                     runs_dir=tmp_path_factory.mktemp("runs")) as server:
        yield server


def tool_mode_turn(server: AppServer, prompt: str) -> tuple[list[dict], str]:
    """(events, answer) of one Tools-mode turn."""
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 96}
    with httpx.stream("POST", server.url + "/app/chat", json=body, timeout=120) as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["type"] == "done", events[-1]
    return events, events[-1]["messages"][-1]["content"]


def chat_mode_turn(server: AppServer, prompt: str) -> dict:
    body = {"model": "openk2-embedded", "max_tokens": 96, "temperature": 0,
            "messages": [{"role": "user", "content": prompt}]}
    r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def sensible(answer: str) -> bool:
    """Some text, short, with no special-token markup and no tool-call text in it, and not
    garbled: one of the honest sentences the model was taught (`conversation.ANSWERS`)."""
    return (bool(answer.strip()) and len(answer) <= MAX_ANSWER_CHARS and "<|" not in answer
            and "functions." not in answer and answer in ANSWERS)


def check_both_modes(server: AppServer, prompt: str) -> None:
    events, answer = tool_mode_turn(server, prompt)
    assert not [e for e in events if e["type"] == "tool_call"], (prompt, events)
    assert sensible(answer), (prompt, answer)
    choice = chat_mode_turn(server, prompt)
    assert choice["finish_reason"] == "stop" and not choice["message"].get("tool_calls"), choice
    assert sensible(choice["message"]["content"] or ""), (prompt, choice)


@pytest.mark.parametrize("prompt", FAST_PROMPTS)
def test_small_talk_gets_a_short_answer_and_no_tool_call(live: AppServer, prompt: str) -> None:
    check_both_modes(live, prompt)


@pytest.mark.slow
@pytest.mark.parametrize("prompt", sorted(set(HELDOUT_PROMPTS) - set(FAST_PROMPTS)))
def test_a_conversational_prompt_gets_a_short_answer_and_no_tool_call(
    live: AppServer, prompt: str
) -> None:
    check_both_modes(live, prompt)


@pytest.mark.slow
def test_most_answers_fit_their_prompt(live: AppServer) -> None:
    assert set(FITTING) == set(HELDOUT_PROMPTS)
    answers = [(p, tool_mode_turn(live, p)[1]) for p in HELDOUT_PROMPTS]
    answers += [(p, chat_mode_turn(live, p)["message"]["content"]) for p in HELDOUT_PROMPTS]
    misfits = [(p, a) for p, a in answers if a not in FITTING[p]]
    assert len(answers) - len(misfits) >= FITTING_FLOOR, misfits


def test_the_tools_still_work_after_small_talk(live: AppServer) -> None:
    body = {"messages": [{"role": "user", "content": "Hi there"},
                         {"role": "assistant", "content": "Hello!"},
                         {"role": "user", "content": "What is 12*7?"}]}
    with httpx.stream("POST", live.url + "/app/chat", json=body, timeout=120) as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert [e["name"] for e in events if e["type"] == "tool_call"] == ["calculator"]
    assert events[-1]["messages"][-1]["content"] == "84"


def report(server: AppServer, out: Path) -> None:
    """Write every prompt's two answers as JSON lines (for the README and reviews)."""
    with out.open("w") as f:
        for prompt in HELDOUT_PROMPTS:
            events, answer = tool_mode_turn(server, prompt)
            calls = [e["name"] for e in events if e["type"] == "tool_call"]
            chat = chat_mode_turn(server, prompt)["message"]
            f.write(json.dumps({"prompt": prompt, "tools_mode": answer, "calls": calls,
                                "chat_mode": chat.get("content"),
                                "chat_calls": chat.get("tool_calls")}) + "\n")
