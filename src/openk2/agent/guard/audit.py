"""The audit log: one JSON line per guard decision, flushed and fsynced before the call runs.

A decision that is not on disk when the command starts could be lost in a crash exactly when
it matters, so `record` returns only after `fsync`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from openk2.agent.guard.approvals import project_key, state_dir


def audit_path(workspace: Path) -> Path:
    """The default audit log of a workspace, in openk2's state directory."""
    return state_dir() / "code" / "audit" / f"{project_key(workspace)}.jsonl"


class AuditLog:
    """Append-only JSONL file; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the session

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record (`ts`, `event`, then `fields`) durably and return it."""
        entry = {"ts": time.time(), "event": event, **fields}
        line = json.dumps(entry, default=str, ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        return entry

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_audit(path: Path) -> list[dict[str, Any]]:
    """All records of an audit log (for tests, `/audit` and post-mortems)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
