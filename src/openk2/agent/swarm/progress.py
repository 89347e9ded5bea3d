"""A live terminal view of a swarm run, fed by wire events (rich)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from openk2.agent.loop.events import AgentFinished, AgentSpawned, Event, RateLimited, StepEnd


class SwarmProgress:
    """Counts agents, steps, tokens and 429s; renders them as a small table."""

    def __init__(self, run_id: str, max_steps: int, console: Console | None = None) -> None:
        self.run_id = run_id
        self.max_steps = max_steps
        self.running = 0
        self.finished = {"completed": 0, "failed": 0, "aborted": 0}
        self.steps = 0
        self.tokens = 0
        self.rate_limited = 0
        self.limit: int | None = None
        self.rate: float | None = None
        self._start = time.monotonic()
        self._console = console or Console(stderr=True)
        self._live: Live | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, AgentSpawned):
            self.running += 1
        elif isinstance(event, AgentFinished):
            self.running -= 1
            self.finished[event.state] = self.finished.get(event.state, 0) + 1
        elif isinstance(event, StepEnd):
            self.steps += 1
            self.tokens += event.usage.total_tokens
        elif isinstance(event, RateLimited):
            self.rate_limited += 1
            self.limit, self.rate = event.limit, event.rate

    def render(self) -> Table:
        """The current figures as a table."""
        table = Table(title=f"swarm {self.run_id}", show_header=True, expand=False)
        for col in ("running", "done", "failed", "aborted", "steps", "tokens", "429s", "elapsed"):
            table.add_column(col, justify="right")
        table.add_row(
            str(self.running), str(self.finished["completed"]), str(self.finished["failed"]),
            str(self.finished["aborted"]), f"{self.steps}/{self.max_steps}", f"{self.tokens:,}",
            self._limits(),
            f"{time.monotonic() - self._start:.0f}s",
        )
        return table

    def _limits(self) -> str:
        """429s so far, with the concurrency limit and pacing rate they left."""
        notes = [f"limit {self.limit}"] if self.limit else []
        if self.rate is not None:
            notes.append(f"{self.rate:.3g} req/s")
        return str(self.rate_limited) + (f" ({', '.join(notes)})" if notes else "")

    def __enter__(self) -> SwarmProgress:
        self._live = Live(get_renderable=self.render, console=self._console,
                          refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
