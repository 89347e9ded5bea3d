"""Durability: the SQLite log, replay, crash mid-run and resume without redoing steps."""

from __future__ import annotations

import asyncio
from collections import Counter

from swarm_scripts import echo_worker, fan_out, is_orchestrator, route, steps_done, task_of

from openk2.agent.llm.scripted import ScriptedProvider
from openk2.agent.swarm import Swarm, SwarmConfig, open_run_store
from openk2.agent.swarm.state import replay


def _logged_steps(store) -> set[tuple[str, int]]:
    """(task or 'main', step) of every logged LLM step."""
    tasks = {"main": "main"}
    out = set()
    for ev in store.events():
        if ev.kind == "spawn":
            tasks[ev.agent_id] = ev.data["prompt"]
        elif ev.kind == "llm":
            out.add((tasks[ev.agent_id], ev.step))
    return out


def _requested(provider: ScriptedProvider) -> list[tuple[str, int]]:
    return [("main" if is_orchestrator(c) else task_of(c), steps_done(c) + 1)
            for c in provider.calls]


async def test_crash_mid_run_then_resume_redoes_no_logged_step(tmp_path) -> None:
    script = route(fan_out([f"item{i}" for i in range(6)]), echo_worker(delay=0.05, steps=4))
    store = open_run_store(tmp_path, "run1")
    enough = asyncio.Event()

    def counting(c):
        if c.index >= 14:
            enough.set()
        return script(c)

    first = ScriptedProvider(counting)
    swarm = Swarm(first, store=store, run_id="run1", config=SwarmConfig())
    task = asyncio.create_task(swarm.run("Six items."))
    await enough.wait()
    task.cancel()  # the process "dies": nothing after this point is committed
    await asyncio.gather(task, return_exceptions=True)
    crashed = open_run_store(tmp_path, "run1", must_exist=True)  # a new process opens the file
    before = _logged_steps(crashed)
    assert 8 <= len(before) < 1 + 6 * 4

    second = ScriptedProvider(script)
    resumed = Swarm.restore(second, crashed, "run1")
    out = await resumed.run()
    assert out.state == "completed" and "completed: 6, failed: 0" in out.answer
    redone = set(_requested(second)) & before
    assert redone == set()
    counts = Counter((ev.agent_id, ev.step) for ev in crashed.events() if ev.kind == "llm")
    assert max(counts.values()) == 1 and len(counts) == 2 + 6 * 4
    assert out.accounting.total_steps == 2 + 6 * 4 and out.accounting.critical_steps == 1 + 4 + 1


async def test_resuming_a_finished_run_returns_its_answer(tmp_path) -> None:
    script = route(fan_out(["a", "b"]), echo_worker())
    store = open_run_store(tmp_path, "done")
    out = await Swarm(ScriptedProvider(script), store=store, run_id="done").run("Two.")
    store.close()
    again = ScriptedProvider(script)
    reopened = open_run_store(tmp_path, "done", must_exist=True)
    out2 = await Swarm.restore(again, reopened, "done").run()
    assert out2.answer == out.answer and again.calls == []
    state = replay("done", reopened.events())
    assert state.final is not None and len(state.agents) == 3


def test_unknown_run_is_a_clear_error(tmp_path) -> None:
    import pytest

    open_run_store(tmp_path, "real").close()
    with pytest.raises(FileNotFoundError, match=r"no run 'nope'.*real"):
        open_run_store(tmp_path, "nope", must_exist=True)
    with pytest.raises(ValueError, match="no start event"):
        Swarm.restore(ScriptedProvider([]), open_run_store(tmp_path, "real"), "real")
