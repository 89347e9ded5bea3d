"""Sub-agents on a remote backend: the in-process contract, and a local Ray instance."""

from __future__ import annotations

import sys

import pytest
import swarm_scripts
from pydantic import BaseModel
from swarm_scripts import echo_worker, fan_out, route, task_of

from openk2.agent.llm.scripted import ScriptedProvider
from openk2.agent.swarm import AgentSpec, BudgetLimits, Swarm, SwarmConfig, open_run_store
from openk2.agent.swarm.remote import InlineBackend
from openk2.agent.tools import Toolset, tool


class NoteParams(BaseModel):
    text: str


@tool()
async def note(p: NoteParams) -> str:
    """Write a note."""
    return f"noted: {p.text}"


WORKER = AgentSpec(name="worker", system_prompt="w", tools=("note",))


def flaky_worker(c):
    if task_of(c) == "Research boom.":
        raise RuntimeError("worker crashed")
    return echo_worker(steps=3)(c)


def _swarm(backend, script, tmp_path, **limits) -> Swarm:
    cfg = SwarmConfig(limits=BudgetLimits(**limits)) if limits else SwarmConfig()
    return Swarm(ScriptedProvider(script), config=cfg, tools=Toolset([note]), specs=[WORKER],
                 backend=backend, store=open_run_store(tmp_path, "remote"), run_id="remote")


async def test_inline_backend_logs_every_remote_step(tmp_path) -> None:
    script = route(fan_out(["a", "b", "boom"]), flaky_worker)
    out = await _swarm(InlineBackend(), script, tmp_path).run("Three.")
    states = sorted((a.state, a.steps) for a in out.agents)
    assert states == [("completed", 3), ("completed", 3), ("failed", 0)]
    assert "RuntimeError: worker crashed" in out.answer
    assert out.accounting.total_steps == 2 + 6 and out.accounting.critical_steps == 1 + 3 + 1


async def test_inline_backend_respects_the_step_budget(tmp_path) -> None:
    script = route(fan_out(["a", "b", "c"]), echo_worker(steps=4))
    swarm = _swarm(InlineBackend(), script, tmp_path, max_steps=8)
    out = await swarm.run("Three, but only eight steps.")
    assert out.accounting.total_steps <= 8 and swarm.budget.steps <= 8
    assert any(a.error == "step budget exhausted" for a in out.agents)


async def test_ray_backend_on_a_local_instance(tmp_path) -> None:
    ray = pytest.importorskip("ray")
    from openk2.agent.swarm.ray_backend import RayBackend

    ray.cloudpickle.register_pickle_by_value(swarm_scripts)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        backend = RayBackend(num_cpus=2)
        script = route(fan_out(["x", "y", "boom"]), flaky_worker)
        out = await _swarm(backend, script, tmp_path).run("On Ray.")
    finally:
        ray.shutdown()
    assert sorted(a.state for a in out.agents) == ["completed", "completed", "failed"]
    assert out.accounting.total_steps == 2 + 6
    done = [a for a in out.agents if a.state == "completed"]
    assert all(a.output.startswith("<result>done: Research") for a in done)
