"""Task families: scripted multi-step tool-using chats in the OpenAI message format.

Every task is a user request, the assistant's tool calls (ids `functions.NAME:IDX`, IDX counting
from 0 across the conversation), the tool results from a `ToolWorld`, and a final answer derived
only from those results. Families:

- `calc`, `file`, `kv_get`: one item, one tool call.
- `kv_set`: store a value, then read a (possibly the same) key back: two sequential calls.
- `file_sum`: read two files in one parallel turn, add their ports with the calculator.
- `swarm`: create a worker sub-agent, fan 2-4 items out with parallel `assign_task` calls and list
  the results, one `label: answer` line per item. Each worker's own chat is a training chat too.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from openk2.train.synthetic.items import (
    WORDS,
    Item,
    ItemKind,
    file_item,
    kv_item,
    make_item,
)
from openk2.train.synthetic.profile import ChatProfile
from openk2.train.synthetic.world import ToolWorld

FAMILIES = ("calc", "file", "kv_get", "kv_set", "file_sum", "swarm")
"""All task families, in the order `generate` cycles through them."""


@dataclass(slots=True)
class Chat:
    """Accumulates one conversation and numbers its tool calls."""

    system: str
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]] = field(default_factory=list)
    next_call: int = 0

    def __post_init__(self) -> None:
        self.messages.append({"role": "system", "content": self.system})

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def call(self, calls: list[tuple[str, dict[str, str]]], results: list[str]) -> None:
        """One assistant turn with parallel tool calls, then one tool message per call."""
        ids = [f"functions.{name}:{self.next_call + i}" for i, (name, _) in enumerate(calls)]
        self.next_call += len(calls)
        self.messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": n, "arguments": _js(a)}}
                    for cid, (n, a) in zip(ids, calls, strict=True)
                ],
            }
        )
        for cid, result in zip(ids, results, strict=True):
            self.messages.append({"role": "tool", "tool_call_id": cid, "content": result})

    def answer(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})

    def record(self) -> dict[str, Any]:
        """The chat as an SFT record: OpenAI `messages` plus `tools` schemas."""
        return {"messages": self.messages, "tools": self.tools}


@dataclass(slots=True)
class Episode:
    """What one family produces: the main chat, its answer, and any sub-agent chats."""

    chat: Chat
    expected: str
    subchats: list[Chat] = field(default_factory=list)


def _js(args: dict[str, str]) -> str:
    """Compact JSON arguments, as the model is trained to emit them."""
    return json.dumps(args, separators=(",", ":"), ensure_ascii=False)


def solve_item(chat: Chat, item: Item, world: ToolWorld) -> str:
    """Append the item's tool call, its result and the derived answer; return the answer."""
    result = world.call(item.tool, item.arguments)
    chat.call([(item.tool, item.arguments)], [result])
    answer = item.answer(result)
    chat.answer(answer)
    return answer


def family_single(kind: ItemKind, rng: random.Random, world: ToolWorld, chat: Chat) -> str:
    """`calc`, `file` or `kv_get`: ask one item and answer it."""
    item = make_item(kind, rng, world)
    chat.user(item.question)
    return solve_item(chat, item, world)


def family_kv_set(rng: random.Random, world: ToolWorld, chat: Chat) -> str:
    """Store a value, then read back either that key or another existing one."""
    key = kv_item(rng, world).label
    new_key = f"{rng.choice(WORDS)}_{rng.randint(1, 999)}"
    value = f"{rng.choice(WORDS)}-{rng.randint(1, 99)}"
    read = new_key if rng.random() < 0.5 else key
    chat.user(f"Store {value} under {new_key}, then tell me what is stored under {read}.")
    stored = world.call("kv_set", {"key": new_key, "value": value})
    chat.call([("kv_set", {"key": new_key, "value": value})], [stored])
    result = world.call("kv_get", {"key": read})
    chat.call([("kv_get", {"key": read})], [result])
    chat.answer(result)
    return result


def family_file_sum(rng: random.Random, world: ToolWorld, chat: Chat) -> str:
    """Read two files in parallel, then add their ports with the calculator."""
    a, b = file_item(rng, world, "port"), file_item(rng, world, "port")
    chat.user(f"What is the sum of the port in {a.label} and the port in {b.label}?")
    results = [world.call(i.tool, i.arguments) for i in (a, b)]
    chat.call([(i.tool, i.arguments) for i in (a, b)], results)
    expr = f"{a.answer(results[0])}+{b.answer(results[1])}"
    total = world.call("calculator", {"expression": expr})
    chat.call([("calculator", {"expression": expr})], [total])
    chat.answer(total)
    return total


_SWARM_ASKS: dict[ItemKind, str] = {
    "calc": "Split these across sub-agents and report each result: {labels}",
    "file": "Split these across sub-agents and report the {field} in each file: {labels}",
    "kv": "Split these across sub-agents and report the value stored under each key: {labels}",
}


def family_swarm(rng: random.Random, world: ToolWorld, chat: Chat, profile: ChatProfile) -> Episode:
    """Create one worker, assign it every item in one parallel turn, list the answers."""
    kind: ItemKind = rng.choice(("calc", "file", "kv"))
    field_name = rng.choice(("owner", "status", "port", "city"))
    items = [
        file_item(rng, world, field_name) if kind == "file" else make_item(kind, rng, world)
        for _ in range(rng.randint(2, 4))
    ]
    labels = ", ".join(i.label for i in items)
    chat.user(_SWARM_ASKS[kind].format(labels=labels, field=field_name))
    agent = f"{kind}_worker"
    create = {"name": agent, "system_prompt": profile.worker_prompt}
    chat.call([("create_subagent", create)], [profile.created.format(name=agent)])
    subchats, answers, results = [], [], []
    for n, item in enumerate(items, 1):
        sub = Chat(system=profile.worker_system_prompt(), tools=profile.worker_tools)
        sub.user(item.question)
        answers.append(solve_item(sub, item, world))
        subchats.append(sub)
        steps = sum(m["role"] == "assistant" for m in sub.messages)
        results.append(profile.assign_result(answer=answers[-1], name=agent, n=n, steps=steps))
    chat.call([("assign_task", {"agent": agent, "prompt": i.question}) for i in items], results)
    expected = "\n".join(f"{i.label}: {a}" for i, a in zip(items, answers, strict=True))
    chat.answer(expected)
    return Episode(chat=chat, expected=expected, subchats=subchats)


def run_family(
    name: str, rng: random.Random, world: ToolWorld, chat: Chat, profile: ChatProfile
) -> Episode:
    """Append one request of family `name` (and its solution) to `chat`."""
    if name in ("calc", "file", "kv_get"):
        kind: ItemKind = "kv" if name == "kv_get" else name  # type: ignore[assignment]
        return Episode(chat=chat, expected=family_single(kind, rng, world, chat))
    if name == "kv_set":
        return Episode(chat=chat, expected=family_kv_set(rng, world, chat))
    if name == "file_sum":
        return Episode(chat=chat, expected=family_file_sum(rng, world, chat))
    if name == "swarm":
        return family_swarm(rng, world, chat, profile)
    raise ValueError(f"unknown task family {name!r}; known: {FAMILIES}")
