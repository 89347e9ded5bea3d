"""The conversational chats of the embedded model's training mixture."""

from __future__ import annotations

import random

from openk2.agent.tools.workspace import world_tool_specs
from openk2.embedded.conversation import (
    ANSWERS,
    FAST_PROMPTS,
    HELDOUT_PROMPTS,
    NEED_TOOLS,
    conversation_chat,
    exchange,
)
from openk2.embedded.corpus import CorpusSpec, training_rows
from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT

TASK = {"messages": [{"role": "system", "content": CLIENT_SYSTEM_PROMPT},
                     {"role": "user", "content": "What is 2+3?"},
                     {"role": "assistant", "content": "5"}]}


def _norm(text: str) -> str:
    return text.lower().strip(" !.?:),")


def test_exchanges_are_short_fixed_answers_and_never_the_heldout_prompts() -> None:
    rng = random.Random(0)
    pairs = [exchange(rng) for _ in range(20_000)]
    assert {a for _, a in pairs} == ANSWERS - {NEED_TOOLS}
    assert all(len(a) < 200 for a in ANSWERS)  # one or two short sentences
    assert all("<|" not in a and "functions." not in a for a in ANSWERS)
    assert len({q for q, _ in pairs}) > 5000  # variety, not a few sentences repeated
    generated = {_norm(q) for q, _ in pairs}
    assert len(HELDOUT_PROMPTS) == 20 and set(FAST_PROMPTS) <= set(HELDOUT_PROMPTS)
    assert generated & {_norm(p) for p in HELDOUT_PROMPTS} <= {_norm(HELDOUT_PROMPTS[0])}


def _chats(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    tools = [s.to_openai() for s in world_tool_specs()]
    return [conversation_chat(rng, tools, [TASK]) for _ in range(n)]


def test_chats_come_with_and_without_tools_and_around_tool_tasks() -> None:
    chats = _chats(400, 1)
    bare = [c for c in chats if "tools" not in c]
    assert bare and all(c["messages"][0]["role"] == "user" for c in bare)
    with_tools = [c for c in chats if "tools" in c]
    assert all(c["messages"][0]["content"] == CLIENT_SYSTEM_PROMPT for c in with_tools)
    assert any(c["messages"][-1]["content"] == "5" and len(c["messages"]) >= 5 for c in chats)
    assert any(c["messages"][1]["content"] == "What is 2+3?" and len(c["messages"]) >= 5
               for c in chats)
    assert any(len(c["messages"]) >= 6 and "tools" not in c for c in chats)  # several turns


def test_without_tools_every_answer_is_plain_text_and_a_task_is_declined() -> None:
    bare = [c for c in _chats(600, 2) if "tools" not in c]
    assert all("tool_calls" not in m for c in bare for m in c["messages"])
    asked = [c for c in bare if any(m["content"] == "What is 2+3?" for m in c["messages"])]
    assert asked and all(c["messages"][-1]["content"] == NEED_TOOLS for c in asked)


def test_the_corpus_mixes_them_in_on_request() -> None:
    plain = training_rows(CorpusSpec(client=20, swarm=2, seed=3))
    mixed = training_rows(CorpusSpec(client=20, swarm=2, chat=30, seed=3))
    assert len(mixed) == len(plain) + 30
    answers = [m["content"] for r in mixed for m in r["messages"] if m["role"] == "assistant"]
    assert sum(a in ANSWERS for a in answers) >= 30
