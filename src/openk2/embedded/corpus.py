"""The embedded model's training corpus: client-driven and swarm-driven tool-use chats, mixed.

Client chats cover the direct families (calculator, files, key-value store, parallel reads);
swarm chats are orchestrator runs that create a worker and fan items out with `assign_task`,
plus a sample of the workers' own chats. Held-out tasks of both kinds are written next to the
training file for `openk2 eval-embedded`. Everything is seeded, so a corpus is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openk2.agent.tools.workspace import world_tool_specs
from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT, client_profile, swarm_profile
from openk2.train.synthetic import Task, generate_tasks, write_jsonl
from openk2.train.synthetic.items import (
    CITIES,
    DIRS,
    FIELDS,
    KEY_PREFIXES,
    PEOPLE,
    STATUSES,
    WORDS,
    calc_item,
)

CLIENT_FAMILIES = ("calc", "file", "kv_get", "kv_set", "file_sum")
SWARM_FAMILIES = ("swarm",)


@dataclass(kw_only=True, slots=True)
class CorpusSpec:
    """Sizes of one corpus."""

    client: int = 6000
    """Client-driven training tasks (cycled over `CLIENT_FAMILIES`)."""
    swarm: int = 2400
    """Orchestrator training tasks."""
    workers_per_swarm: int = 1
    """Worker chats kept per orchestrator task (the rest repeat what client chats teach)."""
    heldout: int = 100
    """Held-out tasks of each kind."""
    echo: int = 0
    """Copy drills ("Repeat exactly: ..."): short chats that are nothing but copying from the
    context, which the tool chats need everywhere (arguments from the request, answers from
    tool results) but exercise only a few tokens per chat."""
    chat: int = 0
    """Conversational chats (greetings, thanks, out-of-scope requests, answered briefly; see
    `conversation.py`), so that no request makes the model start a half tool call."""
    seed: int = 0


def client_tasks(n: int, *, seed: int, split: str) -> list[Task]:
    return generate_tasks(n, seed=seed, split=split, families=CLIENT_FAMILIES,  # type: ignore[arg-type]
                          profile=client_profile())


def swarm_tasks(n: int, *, seed: int, split: str) -> list[Task]:
    return generate_tasks(n, seed=seed, split=split, families=SWARM_FAMILIES,  # type: ignore[arg-type]
                          followup_rate=0.0, profile=swarm_profile())


def training_rows(spec: CorpusSpec) -> list[dict[str, Any]]:
    """SFT records of the whole mixture, shuffled so that packed rows mix chat lengths."""
    rng = random.Random(spec.seed)
    rows = [{"messages": t.messages, "tools": t.tools}
            for t in client_tasks(spec.client, seed=spec.seed, split="train")]
    for task in swarm_tasks(spec.swarm, seed=spec.seed, split="train"):
        rows.append({"messages": task.messages, "tools": task.tools})
        rows += rng.sample(task.subchats, min(spec.workers_per_swarm, len(task.subchats)))
    rows += [echo_chat(rng) for _ in range(spec.echo)]
    rows += _conversations(spec, rng, rows)
    rng.shuffle(rows)
    return rows


def _conversations(spec: CorpusSpec, rng: random.Random,
                   rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from openk2.embedded.conversation import conversation_chat

    tools = [s.to_openai() for s in world_tool_specs()]
    direct = [r for r in rows if r.get("tools") == tools and len(r["messages"]) <= 8
              and r["messages"][0]["content"] == CLIENT_SYSTEM_PROMPT]
    return [conversation_chat(rng, tools, direct) for _ in range(spec.chat)]


def echo_chat(rng: random.Random) -> dict[str, Any]:
    """A copy drill: 2-6 strings shaped like the tasks' keys, paths, values and expressions."""
    text = " ".join(_echo_piece(rng) for _ in range(rng.randint(2, 6)))
    return {"messages": [{"role": "user", "content": f"Repeat exactly: {text}"},
                         {"role": "assistant", "content": text}]}


def _echo_piece(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return f"{rng.choice(KEY_PREFIXES)}_{rng.randint(1, 999)}"
    if kind == 1:
        return f"{rng.choice(DIRS)}/{rng.choice(WORDS)}.txt"
    if kind == 2:
        return f"{rng.choice(WORDS)}-{rng.randint(1, 99)}"
    if kind == 3:
        return calc_item(rng).label
    if kind == 4:
        return str(rng.randint(0, 99999))
    return f"{rng.choice(FIELDS)}: {rng.choice(PEOPLE + CITIES + STATUSES)}"


def write_corpus(out: Path, spec: CorpusSpec) -> dict[str, int]:
    """Write train.jsonl, heldout_client.jsonl and heldout_swarm.jsonl; return row counts."""
    counts = {"train": write_jsonl(out / "train.jsonl", training_rows(spec))}
    for kind, make in (("client", client_tasks), ("swarm", swarm_tasks)):
        tasks = make(spec.heldout, seed=spec.seed + 1, split="heldout")
        counts[f"heldout_{kind}"] = write_jsonl(out / f"heldout_{kind}.jsonl",
                                                (t.to_json() for t in tasks))
    return counts
