"""The horizon suite through `openk2 swarm`: every step is an agent's tool call.

The `horizon` suite puts a key -> value table in one prompt and asks for N lookups in one
answer. Here the same seeded chains (`suites.horizon.chain`) sit behind the `kv_get` tool
that `openk2 swarm --workspace` gives its sub-agents, and the task names only the start key
and N: the orchestrator delegates, a sub-agent follows the chain one tool call at a time,
and the run's final answer (each key reached, then `FINAL: <key>`) is scored as the
one-call suite scores it. Success vs N, the METR-style fit and the 50%/80% horizons then
measure agent steps: how many an agent takes before its work degrades.

Each task is one swarm run, kept under `OUT/runs/<sample id>`; finished tasks are rows of
`OUT/samples.jsonl`, so a re-run skips them (and resumes a run that was cut off).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openk2.agent.llm.provider import ChatProvider
from openk2.agent.swarm.launcher import LaunchOptions, launch
from openk2.agent.tools.base import Toolset
from openk2.agent.tools.workspace import KvGet
from openk2.evals.metrics import percentile, wilson
from openk2.evals.suites.base import Sample
from openk2.evals.suites.horizon import DEFAULT_STEPS, HorizonSuite, chain

SUITE = "horizon"
"""The report's suite key: the figures and `openk2 eval compare` read it as the horizon."""


@dataclass(frozen=True, slots=True)
class ChainWorld:
    """What `kv_get` reads: one task's table (a missing key is the tool's error text)."""

    table: dict[str, str]

    def call(self, name: str, arguments: str | dict[str, Any]) -> str:
        args = json.loads(arguments) if isinstance(arguments, str) else arguments
        key = str(args.get("key", ""))
        if name != "kv_get" or key not in self.table:
            return f"Error: no value stored under {key!r}."
        return self.table[key]


@dataclass(frozen=True, slots=True)
class ChainTask:
    """One swarm run: the task text, the table behind kv_get, and the scoring sample."""

    sample: Sample
    table: dict[str, str]
    prompt: str


def tasks(n: int, seed: int, steps: tuple[int, ...] = DEFAULT_STEPS) -> list[ChainTask]:
    """`n` chains cycling over the step grid, seeded."""
    rng = random.Random(f"swarm-horizon:{seed}")
    grid = tuple(sorted(set(steps)))
    out = []
    for i in range(n):
        count = grid[i % len(grid)]
        pairs, path = chain(rng, count)
        prompt = (f"A key-value store is reachable with the kv_get tool. Start at key "
                  f"'{path[0]}'. Look up its value with kv_get; that value is the next key. Do "
                  f"this {count} time(s), one lookup after another. Answer with each key you "
                  f"reach on its own line, in order, then a last line 'FINAL: <key>'.")
        sample = Sample(id=f"swarm-horizon-{seed}-{i}", calls=(), reference={"path": path[1:]},
                        meta={"steps": count})
        out.append(ChainTask(sample=sample, table=dict(pairs), prompt=prompt))
    return out


@dataclass(kw_only=True)
class SwarmHorizonConfig:
    """Where the swarm runs and what it is asked."""

    name: str
    base_url: str = ""
    model: str = ""
    api_key: str | None = None
    n: int = 16
    seed: int = 0
    steps: tuple[int, ...] = DEFAULT_STEPS
    concurrency: int = 4
    """Swarm runs at once."""
    out_dir: Path = Path("swarm-horizon-out")
    provider: ChatProvider | None = None
    """Instead of base_url/model (tests, in-process providers)."""


async def run_swarm_horizon(cfg: SwarmHorizonConfig) -> dict[str, Any]:
    """Run every task not yet in samples.jsonl; write and return report.json."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    rows_path = cfg.out_dir / "samples.jsonl"
    done = {r["sample"]: r for r in _read_rows(rows_path)}
    todo = [t for t in tasks(cfg.n, cfg.seed, cfg.steps) if t.sample.id not in done]
    gate = asyncio.Semaphore(cfg.concurrency)

    async def one(task: ChainTask) -> None:
        async with gate:
            row = await _run_task(cfg, task)
        with rows_path.open("a") as f:  # append-only: a crash loses no finished task
            f.write(json.dumps(row) + "\n")
        done[row["sample"]] = row

    await asyncio.gather(*(one(t) for t in todo))
    ids = [t.sample.id for t in tasks(cfg.n, cfg.seed, cfg.steps)]
    report = _report(cfg, [done[i] for i in ids])
    (cfg.out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


async def _run_task(cfg: SwarmHorizonConfig, task: ChainTask) -> dict[str, Any]:
    steps = task.sample.meta["steps"]
    runs = cfg.out_dir / "runs"
    resume = (runs / task.sample.id / "events.sqlite").exists()  # cut off last time
    opts = LaunchOptions(task=task.prompt, base_url=cfg.base_url, model=cfg.model,
                         api_key=cfg.api_key, run_dir=runs, run_id=task.sample.id,
                         agent_max_steps=2 * steps + 8, max_steps=8 * steps + 32,
                         max_agents=8, tools=Toolset([KvGet(ChainWorld(task.table))]),
                         otel=False)
    try:
        outcome = await launch(opts, resume=resume, provider=cfg.provider)
    except (OSError, ValueError, RuntimeError) as exc:
        return _row(cfg, task, None, f"{type(exc).__name__}: {exc}")
    error = outcome.error if outcome.state != "completed" else None
    return _row(cfg, task, outcome, error)


def _row(cfg: SwarmHorizonConfig, task: ChainTask, outcome: Any,
         error: str | None) -> dict[str, Any]:
    answer = outcome.answer if outcome is not None else ""
    message = {"role": "assistant", "content": answer}
    answers = [{"error": error}] if error else [{"message": message}]
    score = HorizonSuite().score(task.sample, answers)
    row: dict[str, Any] = {"endpoint": cfg.name, "sample": task.sample.id,
                           "meta": task.sample.meta, "passed": score.passed,
                           "score": score.score, "detail": score.detail, "answer": answer,
                           "error": error}
    if outcome is not None:
        row |= {"agents": len(outcome.agents), "agent_steps": outcome.accounting.total_steps,
                "usage": outcome.accounting.usage.to_dict()}
    return row


def _report(cfg: SwarmHorizonConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    passed = sum(bool(r["passed"]) for r in rows)
    steps = [r["agent_steps"] for r in rows if "agent_steps" in r]
    lo, hi = wilson(passed, len(rows))
    summary = {"n": len(rows), "samples": len(rows), "passed": passed,
               "pass_at_1": passed / len(rows) if rows else None, "ci95": [lo, hi],
               "errors": sum(r["error"] is not None for r in rows),
               "agent_steps_p50": percentile(steps, 0.5),
               "extra": HorizonSuite().summarize(rows)}
    config = {"via": "openk2 swarm", "suites": [SUITE], "n": cfg.n, "seed": cfg.seed,
              "steps": list(cfg.steps), "model": cfg.model, "base_url": cfg.base_url}
    return {"config": config, "endpoints": {cfg.name: {"suites": {SUITE: summary}}}}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Finished rows; a line cut by a crash is dropped (its task runs again)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
