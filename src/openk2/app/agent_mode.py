"""Agent mode: swarm runs started from the page, followed over server-sent events.

A run is the same durable run `openk2 swarm` makes (`RUNS_DIR/RUN_ID/events.sqlite`), driven
against this server's own `/v1`. It runs on the server whether or not a page watches it;
pages follow it with `follow(run_id, after=N)`, which replays the events so far and then
streams new ones, so a reload or a second tab sees the whole run. Cancelling stops the run
between log writes; the log stays, so the run can be resumed later, also after a restart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openk2.agent.loop.events import Wire
from openk2.agent.swarm.launcher import LaunchOptions, launch, options_for_resume
from openk2.agent.swarm.state import MAIN, replay
from openk2.agent.swarm.store import open_run_store
from openk2.agent.tools.base import Toolset
from openk2.app.config import AppConfig
from openk2.app.events import event_json


@dataclass
class SwarmRun:
    """One run as this server process knows it: its page events and the task driving it."""

    run_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.changed.set()


class SwarmRuns:
    """The agent-mode runs of one server."""

    def __init__(self, config: AppConfig, tools: Toolset | None) -> None:
        self.config = config
        self.tools = tools
        self.runs: dict[str, SwarmRun] = {}

    def start(self, task: str, base_url: str, model: str, api_key: str | None) -> SwarmRun:
        """Start a new run of `task`; its events begin with the task itself."""
        if not task.strip():
            raise ValueError("agent mode needs a non-empty task")
        cfg = self.config
        opts = LaunchOptions(task=task, base_url=base_url, model=model, api_key=api_key,
                             run_dir=cfg.runs_dir, run_id=uuid.uuid4().hex[:12],
                             max_agents=cfg.swarm_max_agents, max_steps=cfg.swarm_max_steps,
                             agent_max_steps=cfg.swarm_agent_max_steps, temperature=0.0,
                             tools=self.tools, otel=False)
        run = SwarmRun(str(opts.run_id))
        run.add({"type": "run", "run_id": run.run_id, "task": task, "resumed": False})
        return self._drive(run, opts, resume=False)

    def resume(self, run_id: str, base_url: str, api_key: str | None) -> SwarmRun:
        """Continue a run from its log (after a cancel or a server restart)."""
        known = self.runs.get(run_id)
        if known is not None and known.active:
            return known
        opts = options_for_resume(self.config.runs_dir, run_id, api_key)
        opts.base_url, opts.tools, opts.otel = base_url, self.tools, False
        task, agents = _logged_run(self.config.runs_dir, run_id)
        run = SwarmRun(run_id)
        run.add({"type": "run", "run_id": run_id, "task": task, "resumed": True})
        for event in agents:
            run.add(event)
        return self._drive(run, opts, resume=True)

    def cancel(self, run_id: str) -> bool:
        """Stop a running run (its log is kept); False when it is not running here."""
        run = self.runs.get(run_id)
        if run is None or not run.active:
            return False
        assert run.task is not None
        run.task.cancel()
        return True

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The run's events from index `after`, then new ones until the run ends."""
        run = self.runs[run_id]
        sent = max(0, after)
        while True:
            run.changed.clear()
            while sent < len(run.events):
                yield {**run.events[sent], "seq": sent}
                sent += 1
            if not run.active:
                return
            await run.changed.wait()

    async def close(self) -> None:
        """Cancel every run (server shutdown); their logs stay resumable."""
        tasks = [r.task for r in self.runs.values() if r.task is not None and r.active]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _drive(self, run: SwarmRun, opts: LaunchOptions, *, resume: bool) -> SwarmRun:
        self.runs[run.run_id] = run
        run.task = asyncio.create_task(_execute(run, opts, resume))
        return run


async def _execute(run: SwarmRun, opts: LaunchOptions, resume: bool) -> None:
    wire = Wire()
    wire.subscribe(lambda ev: _record(run, ev))
    try:
        outcome = await launch(opts, resume=resume, wire=wire)
        run.add({"type": "final", **outcome.to_json()})
    except asyncio.CancelledError:
        run.add({"type": "cancelled", "run_id": run.run_id})
    except Exception as exc:  # one run's failure is shown on its page, nothing else stops
        run.add({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        run.changed.set()


def _record(run: SwarmRun, event: Any) -> None:
    shown = event_json(event)
    if shown is not None and not (shown["type"] == "delta" and shown["agent_id"] != MAIN):
        run.add(shown)  # sub-agents' token deltas stay out: their steps and results show


def _logged_run(runs_dir: Path, run_id: str) -> tuple[str, list[dict[str, Any]]]:
    """A resumed run's task and the sub-agents it already has, as the events that showed them."""
    store = open_run_store(runs_dir, run_id, must_exist=True)
    try:
        state = replay(run_id, store.events())
    finally:
        store.close()
    events: list[dict[str, Any]] = []
    for rec in state.agents.values():
        if rec.agent_id == MAIN:
            continue
        events.append({"type": "agent", "agent_id": rec.agent_id, "name": rec.spec.name,
                       "parent_id": rec.parent_id, "prompt": "", "replayed": True})
        if rec.finished:
            events.append({"type": "agent_done", "agent_id": rec.agent_id, "state": rec.state,
                           "steps": rec.steps, "tokens": rec.usage.total_tokens,
                           "error": rec.result.error if rec.result else None})
    return state.task, events
