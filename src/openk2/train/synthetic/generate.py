"""Seeded generation of synthetic tool-use tasks, their train/held-out split, and the checker.

A task's split is a pure function of its final user request (a hash), so a request text can never
occur in both splits, and generating either split from any seed yields disjoint sets. Each task
keeps the initial tool world it ran against, so an evaluator can replay the model's own tool calls
against the same files and keys and compare its final answer with `expected` exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from openk2.train.synthetic.items import add_distractors
from openk2.train.synthetic.profile import DEFAULT_PROFILE, ChatProfile
from openk2.train.synthetic.tasks import FAMILIES, Chat, run_family
from openk2.train.synthetic.world import ToolWorld

Split = Literal["train", "heldout"]
DIRECT_FAMILIES = ("calc", "file", "kv_get", "kv_set")
"""Families that may precede the final request in a multi-turn chat."""


@dataclass(kw_only=True, slots=True)
class Task:
    """One generated task: the scripted chat plus what an evaluator needs to grade a model."""

    id: str
    """Stable id, `{split}-{family}-{index}`."""
    family: str
    """Task family (see `tasks.FAMILIES`)."""
    split: str
    """'train' or 'heldout'."""
    tools: list[dict[str, Any]]
    """OpenAI tool schemas declared to the model."""
    messages: list[dict[str, Any]]
    """The whole scripted conversation (the SFT target)."""
    prompt: list[dict[str, Any]]
    """The messages an evaluated model receives: everything up to the final user request."""
    expected: str
    """The exact final answer."""
    world: dict[str, Any]
    """Initial files and key-value store (`ToolWorld.to_json`)."""
    subchats: list[dict[str, Any]] = field(default_factory=list)
    """Each worker sub-agent's scripted chat (swarm tasks), as SFT records."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(**data)


def split_of(request: str, heldout_percent: int) -> Split:
    """The split a final user request belongs to (stable across runs and machines)."""
    bucket = int.from_bytes(hashlib.sha256(request.encode()).digest()[:4], "big") % 100
    return "heldout" if bucket < heldout_percent else "train"


def generate_tasks(
    n: int,
    *,
    seed: int = 0,
    split: Split = "train",
    families: Iterable[str] = FAMILIES,
    heldout_percent: int = 10,
    followup_rate: float = 0.25,
    profile: ChatProfile = DEFAULT_PROFILE,
) -> list[Task]:
    """Generate `n` tasks of `split`, cycling through `families` (repeat a name to weight it).

    With probability `followup_rate` a chat first solves a direct request, so the graded request
    is a second user turn with history. `profile` sets prompts, tool schemas and swarm result
    texts (see `profile.py`).
    """
    fams = list(families)
    if n < 0 or not fams:
        raise ValueError("need n >= 0 and at least one family")
    if not 0 < heldout_percent < 100:
        raise ValueError(f"heldout_percent must be in 1..99, got {heldout_percent}")
    rng = random.Random(f"openk2-synthetic-{seed}")
    tasks: list[Task] = []
    while len(tasks) < n:
        family = fams[len(tasks) % len(fams)]
        task = _candidate(rng, family, followup_rate, heldout_percent, profile)
        if task.split == split:
            task.id = f"{split}-{family}-{len(tasks)}"
            tasks.append(task)
    return tasks


def _candidate(
    rng: random.Random,
    family: str,
    followup_rate: float,
    heldout_percent: int,
    profile: ChatProfile,
) -> Task:
    """Build one task (id left empty); its split follows from its final request.

    The exported world is the state the graded request starts from: the initial files and keys
    plus whatever an earlier turn of the chat stored with `kv_set`.
    """
    world = ToolWorld()
    add_distractors(rng, world, rng.randint(1, 3))
    chat = Chat(system=profile.system_prompt, tools=profile.orchestrator_tools)
    if rng.random() < followup_rate:
        run_family(rng.choice(DIRECT_FAMILIES), rng, world, chat, profile)
    initial = ToolWorld(files=dict(world.files), kv={**world.kv, **world.writes})
    n_before = len(chat.messages)
    episode = run_family(family, rng, world, chat, profile)
    initial.files.update(world.files)
    initial.kv.update(world.kv)
    request = chat.messages[n_before]["content"]
    split = split_of(request, heldout_percent)
    return Task(
        id="",
        family=family,
        split=split,
        tools=profile.orchestrator_tools,
        messages=chat.messages,
        prompt=chat.messages[: n_before + 1],
        expected=episode.expected,
        world=initial.to_json(),
        subchats=[s.record() for s in episode.subchats],
    )


def training_records(tasks: Iterable[Task]) -> Iterator[dict[str, Any]]:
    """SFT records (`messages` + `tools`): every main chat, then its sub-agent chats."""
    for task in tasks:
        yield {"messages": task.messages, "tools": task.tools}
        yield from task.subchats


def normalize_answer(text: str) -> str:
    """Strip each line and the whole text; unify line endings."""
    lines = text.replace("\r\n", "\n").strip().split("\n")
    return "\n".join(line.strip() for line in lines)


def check_answer(task: Task, answer: str | None) -> bool:
    """Exact task success: the final answer equals `task.expected` up to surrounding whitespace."""
    return answer is not None and normalize_answer(answer) == normalize_answer(task.expected)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON lines; return how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_tasks(path: Path) -> list[Task]:
    """Load tasks written by `write_jsonl(path, (t.to_json() for t in tasks))`."""
    with path.open(encoding="utf-8") as f:
        return [Task.from_json(json.loads(line)) for line in f if line.strip()]
