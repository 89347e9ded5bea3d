"""SQLite cache of endpoint answers, keyed on (endpoint, model, request, epoch).

A re-run, or a run killed halfway, asks the cache first and pays only for what is missing.
Each answer is committed as soon as it arrives (WAL mode), so a SIGKILL loses at most the
calls in flight. Errors are never cached (a retry may succeed); an answer cut short by
`max_tokens` is, because it is the endpoint's real answer to that request. The epoch (repeat
index) is part of the key so that `--repeats k` asks k times instead of replaying one answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(
    endpoint: str, url: str, model: str, request: dict[str, Any], epoch: int, slot: int = 0
) -> str:
    """SHA-256 over the canonical JSON of everything that can change the answer.

    `slot` is the call's position within its sample: a check that sends one request twice
    (is temperature 0 deterministic?) must get two answers, not one answer twice.
    """
    blob = json.dumps(
        {"endpoint": endpoint, "url": url, "model": model, "request": request, "epoch": epoch,
         "slot": slot},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class AnswerCache:
    """Answers by request key; one connection, used from one event loop's thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer, or None (counted as a hit or a miss)."""
        row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, endpoint: str, answer: dict[str, Any]) -> None:
        """Store one successful answer (committed at once)."""
        if answer.get("error"):
            raise ValueError("errors are not cached")
        self._db.execute(
            "INSERT OR REPLACE INTO answers (key, endpoint, answer, created) VALUES (?, ?, ?, ?)",
            (key, endpoint, json.dumps(answer), time.time()),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()
