"""Durable sessions: every event appended to a JSONL file and fsynced before the loop goes on.

A session survives `kill -9` at any point: `restore()` replays the file, drops a torn last
line, and repairs a step cut short (an assistant message whose tool calls lack results) with
"interrupted" results instead of running those calls again: a call that did finish has its
result in the log and is never re-run; one that did not may have half-happened, so the model
is told to check rather than the harness guessing. The id of the newest session per workspace
is written when the session starts (not on clean exit), so `--continue` finds a killed one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openk2.agent.llm.message import Message, tool_result

SCHEMA_VERSION = 1
INTERRUPTED = ("interrupted: the session stopped before this call returned, and it was not "
               "run again. Its effect is unknown: check the state before repeating it.")


def state_dir() -> Path:
    """`$OPENK2_CODE_HOME`, else the guard's state directory + `/code` (beside its audit log,
    approvals and snapshots: `$OPENK2_STATE_DIR` or `~/.local/state/openk2`)."""
    env = os.environ.get("OPENK2_CODE_HOME")
    if env:
        return Path(env)
    from openk2.agent.guard.approvals import state_dir as guard_state_dir

    return guard_state_dir() / "code"


class SessionError(ValueError):
    """No such session, or a file that is not a session log."""


@dataclass(slots=True)
class Restored:
    """What a session log holds: its header, the conversation, the todo list."""

    meta: dict[str, Any]
    history: list[Message]
    todos: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[Message] = field(default_factory=list)
    """The "interrupted" results added for calls that never returned."""


class SessionLog:
    """One session's append-only JSONL file."""

    def __init__(self, path: Path, session_id: str) -> None:
        self.path = path
        self.id = session_id
        self._file = path.open("a", encoding="utf-8")

    def append(self, kind: str, **data: Any) -> None:
        """Write one record and fsync it: once this returns, the record survives a crash."""
        record = {"v": SCHEMA_VERSION, "kind": kind, "t": round(time.time(), 3), **data}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def message(self, message: Message) -> None:
        """Record a message that joined the conversation."""
        self.append("message", message=message.to_openai())

    def close(self) -> None:
        """Close the file (records are already on disk)."""
        self._file.close()


class SessionStore:
    """Session logs under `root/sessions`, plus the last session id per workspace."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state_dir()

    def create(self, workspace: Path, **meta: Any) -> SessionLog:
        """Start a new session (and make it the workspace's last one right away)."""
        sid = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
        (self.root / "sessions").mkdir(parents=True, exist_ok=True)
        log = SessionLog(self._path(sid), sid)
        log.append("session", id=sid, workspace=str(workspace), **meta)
        self._set_last(workspace, sid)
        return log

    def open(self, session_id: str) -> tuple[SessionLog, Restored]:
        """Reopen a session for appending, with its restored state."""
        path = self._path(session_id)
        if not path.is_file():
            raise SessionError(f"no session {session_id!r} in {self.root / 'sessions'}")
        restored = restore(path)
        log = SessionLog(path, session_id)
        for m in restored.repaired:
            log.message(m)
        return log, restored

    def last(self, workspace: Path) -> str:
        """The id of the newest session started in `workspace`."""
        marker = self.root / "last" / _workspace_key(workspace)
        if not marker.is_file():
            raise SessionError(f"no earlier session in {workspace}")
        return marker.read_text().strip()

    def list(self, workspace: Path) -> list[SessionInfo]:
        """The sessions started in `workspace`, newest first (read from each log's header)."""
        ws = str(workspace)
        found = []
        for path in (self.root / "sessions").glob("*.jsonl"):
            info = _info(path)
            if info is not None and info.workspace == ws:
                found.append(info)
        return sorted(found, key=lambda i: i.started, reverse=True)

    def _path(self, session_id: str) -> Path:
        if not session_id or "/" in session_id or session_id.startswith("."):
            raise SessionError(f"bad session id {session_id!r}")
        return self.root / "sessions" / f"{session_id}.jsonl"

    def _set_last(self, workspace: Path, session_id: str) -> None:
        marker = self.root / "last" / _workspace_key(workspace)
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(session_id)
        os.replace(tmp, marker)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One line of `/sessions`: which session, when, in which workspace, about what."""

    id: str
    workspace: str
    started: float
    first_prompt: str


def _info(path: Path) -> SessionInfo | None:
    """The header and first user prompt of a log (None for a file that is not a session)."""
    header: dict[str, Any] | None = None
    for rec in read_records(path):
        if header is None:
            if rec.get("kind") != "session":
                return None
            header = rec
        elif rec.get("kind") == "message" and rec["message"].get("role") == "user":
            text = str(rec["message"].get("content") or "")
            return SessionInfo(header["id"], header.get("workspace", ""), header["t"], text)
    if header is None:
        return None
    return SessionInfo(header["id"], header.get("workspace", ""), header["t"], "")


def _workspace_key(workspace: Path) -> str:
    return hashlib.sha256(str(workspace).encode()).hexdigest()[:24]


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a log; a torn final line (crash mid-write) is skipped."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def restore(path: Path) -> Restored:
    """Replay a log into the conversation, then repair an interrupted last step."""
    meta: dict[str, Any] | None = None
    history: list[Message] = []
    todos: list[dict[str, Any]] = []
    for rec in read_records(path):
        kind = rec.get("kind")
        if kind == "session":
            meta = rec
        elif kind == "message":
            history.append(Message.from_openai(rec["message"]))
        elif kind in ("compaction", "rewind"):  # both replace the conversation
            history = [Message.from_openai(m) for m in rec["messages"]]
        elif kind == "todos":
            todos = rec["todos"]
    if meta is None:
        raise SessionError(f"{path} is not a session log (no header)")
    history, repaired = repair(history)
    return Restored(meta, history, todos, repaired)


def repair(history: list[Message]) -> tuple[list[Message], list[Message]]:
    """Tool results in call order after each assistant message; missing ones "interrupted"."""
    out: list[Message] = []
    added: list[Message] = []
    i = 0
    while i < len(history):
        m = history[i]
        out.append(m)
        i += 1
        if m.role != "assistant" or not m.tool_calls:
            continue
        results: dict[str | None, Message] = {}
        while i < len(history) and history[i].role == "tool":
            results[history[i].tool_call_id] = history[i]
            i += 1
        for call in m.tool_calls:
            if call.id not in results:
                results[call.id] = tool_result(call.id, INTERRUPTED)
                added.append(results[call.id])
            out.append(results[call.id])
    return out, added
