"""The conversational chats of the embedded model's training mixture."""

from __future__ import annotations

import random

from openk2.agent.tools.workspace import world_tool_specs
from openk2.embedded.conversation import (
    CANNOT,
    CAPABILITIES,
    FINE,
    GOODBYE,
    GREETING,
    HELDOUT_PROMPTS,
    UNKNOWN,
    WELCOME,
    conversation_chat,
    exchange,
)
from openk2.embedded.corpus import CorpusSpec, training_rows
from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT

ANSWERS = {GREETING, CAPABILITIES, CANNOT, UNKNOWN, WELCOME, GOODBYE, FINE}


def _norm(text: str) -> str:
    return text.lower().strip(" !.?:)")


def test_exchanges_are_short_fixed_answers_and_never_the_heldout_prompts() -> None:
    rng = random.Random(0)
    pairs = [exchange(rng) for _ in range(20_000)]
    assert {a for _, a in pairs} == ANSWERS
    assert all(len(a) < 250 for a in ANSWERS)  # one or two short sentences
    generated = {_norm(q) for q, _ in pairs}
    assert len(HELDOUT_PROMPTS) == 20
    assert generated & {_norm(p) for p in HELDOUT_PROMPTS} == {_norm(HELDOUT_PROMPTS[0])}


def test_chats_come_with_and_without_tools_and_around_tool_tasks() -> None:
    rng = random.Random(1)
    tools = [s.to_openai() for s in world_tool_specs()]
    task = {"messages": [{"role": "system", "content": CLIENT_SYSTEM_PROMPT},
                         {"role": "user", "content": "What is 2+3?"},
                         {"role": "assistant", "content": "5"}]}
    chats = [conversation_chat(rng, tools, [task]) for _ in range(400)]
    bare = [c for c in chats if "tools" not in c]
    assert bare and all(c["messages"][0]["role"] == "user" for c in bare)
    with_tools = [c for c in chats if "tools" in c]
    assert all(c["messages"][0]["content"] == CLIENT_SYSTEM_PROMPT for c in with_tools)
    assert any(c["messages"][-1]["content"] == "5" and len(c["messages"]) == 5 for c in chats)
    assert any(c["messages"][1]["content"] == "What is 2+3?" and len(c["messages"]) == 5
               for c in chats)


def test_the_corpus_mixes_them_in_on_request() -> None:
    plain = training_rows(CorpusSpec(client=20, swarm=2, seed=3))
    mixed = training_rows(CorpusSpec(client=20, swarm=2, chat=30, seed=3))
    assert len(mixed) == len(plain) + 30
    answers = [m["content"] for r in mixed for m in r["messages"] if m["role"] == "assistant"]
    assert sum(a in ANSWERS for a in answers) >= 30
