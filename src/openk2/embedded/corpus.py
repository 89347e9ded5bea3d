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

from openk2.embedded.profiles import client_profile, swarm_profile
from openk2.train.synthetic import Task, generate_tasks, write_jsonl

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
    rng.shuffle(rows)
    return rows


def write_corpus(out: Path, spec: CorpusSpec) -> dict[str, int]:
    """Write train.jsonl, heldout_client.jsonl and heldout_swarm.jsonl; return row counts."""
    counts = {"train": write_jsonl(out / "train.jsonl", training_rows(spec))}
    for kind, make in (("client", client_tasks), ("swarm", swarm_tasks)):
        tasks = make(spec.heldout, seed=spec.seed + 1, split="heldout")
        counts[f"heldout_{kind}"] = write_jsonl(out / f"heldout_{kind}.jsonl",
                                                (t.to_json() for t in tasks))
    return counts
