"""Kill -9 at every commit boundary: the resumed run redoes no logged LLM call or tool call.

A small run (an orchestrator fanning out to three two-step workers, then answering) is run to
completion once while its SQLite log records where each group commit ended. Then, for every
commit boundary, a copy of the log cut there stands in for the file a killed process left
behind; the run is resumed from it and every LLM and tool call made on resume is counted per
agent. A call is allowed only if its result is missing from the cut log, and the resumed run
must end with the uninterrupted run's answer and step count. Both sub-agent paths are cut: in
process (`local`) and through the remote-job contract (`remote`, `InlineBackend`).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel
from swarm_scripts import echo_worker, fan_out, is_orchestrator, route, task_of

from openk2.agent.llm.scripted import ChatCall, ScriptedProvider
from openk2.agent.swarm import Swarm, SwarmConfig, SwarmOutcome
from openk2.agent.swarm.remote import InlineBackend
from openk2.agent.swarm.store import SQLiteEventStore, StoredEvent
from openk2.agent.tools import Toolset, tool

ITEMS = ["alpha", "beta", "gamma"]
WORKERS = {f"Research {item}.": echo_worker(delay=0.02 * i, steps=2)
           for i, item in enumerate(ITEMS)}
"""Staggered latencies, so the workers' steps mostly land in commits of their own."""
SCRIPT = route(fan_out(ITEMS), lambda c: WORKERS[task_of(c)](c))


class NoteParams(BaseModel):
    text: str


class CommitRecorder(SQLiteEventStore):
    """A SQLite log that remembers how many rows were committed after each commit."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.boundaries: list[int] = []

    def _commit(self) -> None:
        super()._commit()
        (rows,) = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
        if not self.boundaries or self.boundaries[-1] != rows:
            self.boundaries.append(rows)


def _note_tool(ran: list[str]) -> Toolset:
    @tool()
    async def note(p: NoteParams) -> str:
        """Write a note."""
        ran.append(p.text)
        return f"noted: {p.text}"

    return Toolset([note])


def _swarm(provider: ScriptedProvider, store: SQLiteEventStore, ran: list[str],
           *, restore: bool, remote: bool = False) -> Swarm:
    kw = {"tools": _note_tool(ran), "config": SwarmConfig(subagent_tools=("note",)),
          "backend": InlineBackend() if remote else None}
    if restore:
        return Swarm.restore(provider, store, "cut", **kw)
    return Swarm(provider, store=store, run_id="cut", **kw)


def _agent(c: ChatCall) -> str:
    return "main" if is_orchestrator(c) else task_of(c)


def _logged(events: list[StoredEvent]) -> tuple[Counter[str], set[str]]:
    """LLM steps per agent (by task) and the note texts whose results are in the log."""
    tasks, steps, notes = {"main": "main"}, Counter[str](), set()
    for ev in events:
        if ev.kind == "spawn":
            tasks[ev.agent_id] = ev.data["prompt"]
        elif ev.kind == "llm":
            steps[tasks[ev.agent_id]] += 1
        elif ev.kind == "tool" and ev.data["output"].startswith("noted: "):
            notes.add(ev.data["output"].removeprefix("noted: "))
    return steps, notes


def _cut(source: Path, rows: int, target: Path) -> SQLiteEventStore:
    """The log a process killed right after commit `rows` leaves behind."""
    target.parent.mkdir(parents=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        dst.execute("DELETE FROM events WHERE seq > ?", (rows,))
    return SQLiteEventStore(target)


async def _uninterrupted(tmp_path: Path, *, remote: bool = False) \
        -> tuple[SwarmOutcome, CommitRecorder, Counter[str]]:
    store = CommitRecorder(tmp_path / "full" / "events.sqlite")
    provider = ScriptedProvider(SCRIPT)
    swarm = _swarm(provider, store, [], restore=False, remote=remote)
    out = await swarm.run("Research three items.")
    return out, store, Counter(_agent(c) for c in provider.calls)


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("every", ["commit", "row"])
async def test_resume_after_every_commit_redoes_no_logged_call(tmp_path: Path, remote: bool,
                                                               every: str) -> None:
    """`row` also cuts inside group commits: states a real crash cannot leave, which must
    resume just as cleanly."""
    full, recorder, calls = await _uninterrupted(tmp_path, remote=remote)
    assert full.state == "completed" and sum(calls.values()) == 2 + 3 * 2
    assert len(recorder.boundaries) >= 4  # the small run still crosses many commits
    total = recorder.boundaries[-1]
    for rows in recorder.boundaries if every == "commit" else range(1, total + 1):
        store = _cut(recorder.path, rows, tmp_path / f"cut{rows}" / "events.sqlite")
        logged, noted = _logged(list(store.events()))
        provider, ran = ScriptedProvider(SCRIPT), []
        out = await _swarm(provider, store, ran, restore=True, remote=remote).run()
        again = Counter(_agent(c) for c in provider.calls)
        for agent in calls:
            assert again[agent] == calls[agent] - logged[agent], (rows, agent)
        assert noted.isdisjoint(ran), rows  # a logged tool result is never produced again
        assert (out.state, out.answer) == (full.state, full.answer), rows
        assert out.accounting.total_steps == full.accounting.total_steps, rows
        store.close()
    recorder.close()


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("finished", ["main", "Research alpha."])
async def test_a_history_ending_in_an_answer_is_finished_on_resume(tmp_path: Path,
                                                                    finished: str,
                                                                    remote: bool) -> None:
    """The exact kill -9 window of the issue: the last LLM step committed, its completion
    (`done` for a sub-agent, `final` for the orchestrator) not."""
    full, recorder, _ = await _uninterrupted(tmp_path, remote=remote)
    events = list(recorder.events())
    ids = {"main": "main"} | {e.data["prompt"]: e.agent_id for e in events if e.kind == "spawn"}
    end = next(e for e in events if e.agent_id == ids[finished] and e.kind in ("done", "final"))
    store = _cut(recorder.path, end.seq - 1, tmp_path / "window" / "events.sqlite")
    provider = ScriptedProvider(SCRIPT)
    out = await _swarm(provider, store, [], restore=True, remote=remote).run()
    assert [_agent(c) for c in provider.calls if _agent(c) == finished] == []
    assert out.answer == full.answer
    kinds = Counter((e.agent_id, e.kind) for e in store.events())
    assert kinds[(ids[finished], "done" if finished != "main" else "final")] == 1
    store.close()
    recorder.close()
