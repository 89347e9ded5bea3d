"""The horizon suite through the swarm runtime: each step one sub-agent tool call. Driven by
the simulated agent of benchmarks/horizon_sim.py (a scripted provider playing orchestrator
and worker, each lookup read right with a programmed probability p)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.evals.swarm_horizon import ChainWorld, SwarmHorizonConfig, run_swarm_horizon, tasks


def _sim():
    path = Path(__file__).parents[2] / "benchmarks" / "horizon_sim.py"
    spec = importlib.util.spec_from_file_location("horizon_sim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(out: Path, p: float, n: int, steps: tuple[int, ...]) -> tuple[dict, object]:
    provider = _sim().simulated_agent(p)
    cfg = SwarmHorizonConfig(name=f"p{p}", n=n, steps=steps, out_dir=out, provider=provider,
                             concurrency=8)
    return asyncio.run(run_swarm_horizon(cfg)), provider


def test_tasks_hide_the_table_behind_kv_get() -> None:
    (task,) = tasks(1, seed=0, steps=(3,))
    path = task.sample.reference["path"]
    assert len(path) == 3 and path[0] not in task.prompt  # only the start key is given
    start = task.prompt.split("'")[1]
    world = ChainWorld(task.table)
    assert world.call("kv_get", {"key": start}) == path[0]
    assert world.call("kv_get", json.dumps({"key": path[1]})) == path[2]
    assert world.call("kv_get", {"key": "nokey"}).startswith("Error: no value")
    assert tasks(4, seed=1)[3].prompt == tasks(4, seed=1)[3].prompt  # seeded


def test_a_perfect_agent_passes_every_chain_through_a_sub_agent(tmp_path: Path) -> None:
    report, provider = _run(tmp_path, 1.0, n=4, steps=(1, 2, 4, 8))
    row = report["endpoints"]["p1.0"]["suites"]["horizon"]
    assert row["pass_at_1"] == 1.0 and row["errors"] == 0
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert all(s["agents"] == 1 for s in samples)  # the orchestrator delegated each chain
    kv_calls = [c for c in provider.calls if any(t.name == "kv_get" for t in c.tools)]
    assert len(kv_calls) == sum(n + 1 for n in (1, 2, 4, 8))  # one call per step, then answer
    again, provider = _run(tmp_path, 1.0, n=4, steps=(1, 2, 4, 8))
    assert provider.calls == [] and again == report  # finished tasks are not run twice


def test_the_fit_recovers_the_programmed_agent_horizon(tmp_path: Path) -> None:
    """Success at N lookups is 0.8^N: H50 = ln 0.5 / ln 0.8 = 3.1 agent steps."""
    report, _ = _run(tmp_path, 0.8, n=4 * 40, steps=(1, 2, 4, 8))
    extra = report["endpoints"]["p0.8"]["suites"]["horizon"]["extra"]
    truth = math.log(0.5) / math.log(0.8)
    assert extra["per_step_accuracy"] == pytest.approx(0.8, abs=0.05)
    assert truth / 1.6 < extra["horizon_50"] < truth * 1.6
    assert extra["success_by_steps"]["1"] > extra["success_by_steps"]["8"]


def test_cli_explains_a_missing_endpoint(tmp_path: Path) -> None:
    _register_commands()
    result = CliRunner().invoke(app, ["eval", "swarm-horizon", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--base-url" in result.output
