"""The run's append-only event log: SQLite in WAL mode, or memory for throwaway runs.

Every step of every agent is a row (`spawn`, `llm`, `tool`, `done`, ...). Rows are never
updated, so a crash (even kill -9) can only lose rows that were not committed yet, and the
run's state is rebuilt by replaying the log. Commits are grouped: `append()` queues a row and
schedules one flush for the current event-loop iteration, `sync()` waits for it; hundreds of
agents finishing steps at once share one commit. WAL with `synchronous=NORMAL` survives
process crashes (only an OS crash or power loss can drop the last commits). What resume does
at each place a crash can cut the log is listed in `runtime.py`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER NOT NULL,
    data TEXT NOT NULL,
    ts REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the log."""

    seq: int
    agent_id: str
    kind: str
    step: int
    data: dict[str, Any]
    ts: float


class EventStore(Protocol):
    """What the swarm needs from a log."""

    def append(self, agent_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Queue one event (durable after the next `sync()`)."""
        ...

    async def sync(self) -> None:
        """Wait until every queued event is committed."""
        ...

    def events(self) -> Iterator[StoredEvent]:
        """Every committed event in order."""
        ...

    def close(self) -> None:
        """Flush and release resources."""
        ...


class MemoryEventStore:
    """The log kept in a list: for tests, benchmarks and `--no-store` runs."""

    def __init__(self) -> None:
        self._rows: list[StoredEvent] = []

    def append(self, agent_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Record one event."""
        self._rows.append(StoredEvent(len(self._rows) + 1, agent_id, kind, step, data, 0.0))

    async def sync(self) -> None:
        """Nothing to wait for."""

    def events(self) -> Iterator[StoredEvent]:
        """Recorded events in order."""
        return iter(list(self._rows))

    def close(self) -> None:
        """Nothing to release."""


class SQLiteEventStore:
    """The log in one SQLite file per run, WAL mode, grouped commits."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._pending: list[tuple[str, str, int, str, float]] = []
        self._flushed: asyncio.Future[None] | None = None

    def append(self, agent_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Queue one event and schedule the group commit."""
        row = (agent_id, kind, step, json.dumps(data, separators=(",", ":")), time.time())
        self._pending.append(row)
        if self._flushed is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside a loop (tools, tests): commit now
                self._commit()
                return
            self._flushed = loop.create_future()
            loop.call_soon(self._flush)

    async def sync(self) -> None:
        """Wait for the commit that contains every event queued so far."""
        if self._flushed is not None:
            await asyncio.shield(self._flushed)

    def _flush(self) -> None:
        fut, self._flushed = self._flushed, None
        try:
            self._commit()
        except sqlite3.Error as exc:
            if fut is not None and not fut.done():
                fut.set_exception(exc)
            return
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _commit(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO events(agent_id, kind, step, data, ts) VALUES (?,?,?,?,?)", rows
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def events(self) -> Iterator[StoredEvent]:
        """Every committed event in order (reads with a separate cursor)."""
        query = "SELECT seq, agent_id, kind, step, data, ts FROM events ORDER BY seq"
        cur = self._db.execute(query)
        for seq, agent_id, kind, step, data, ts in cur:
            yield StoredEvent(seq, agent_id, kind, step, json.loads(data), ts)

    def close(self) -> None:
        """Commit what is queued and close the file."""
        self._commit()
        self._db.close()


def open_run_store(run_dir: Path, run_id: str, *, must_exist: bool = False) -> SQLiteEventStore:
    """The store of run `run_id` under `run_dir` (`RUN_DIR/RUN_ID/events.sqlite`)."""
    path = run_dir / run_id / "events.sqlite"
    if must_exist and not path.is_file():
        known = sorted(p.parent.name for p in run_dir.glob("*/events.sqlite"))
        raise FileNotFoundError(f"no run {run_id!r} in {run_dir} (runs there: {known or 'none'})")
    return SQLiteEventStore(path)
