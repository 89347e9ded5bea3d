"""`openk2 code --rewind ID`: files back to a snapshot, conversation back to before its call.

Every snapshot the guard takes before an edit or command is logged with the call it preceded
(`snapshot` records; a sub-agent's call maps to the parent's Task call that started it). A
rewind restores the work tree (the guard's `SnapshotStore.restore`, as `/undo` does, which
first snapshots the present so the rewind can itself be undone) and appends a `rewind` record
holding the conversation as it was before that call; resuming replays it like a compaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openk2.agent.guard import SnapshotStore
from openk2.agent.guard.snapshots import SnapshotError
from openk2.agent.llm.message import Message
from openk2.code.sessions import SessionError, SessionStore, read_records, restore


@dataclass(frozen=True, slots=True)
class Rewound:
    """What a rewind did: the snapshot restored, the messages kept, the pre-rewind snapshot."""

    snapshot: str
    kept: int
    dropped: int
    undo_id: str


def rewind(store: SessionStore, session_id: str, snapshots: SnapshotStore,
           snapshot_id: str) -> Rewound:
    """Restore `snapshot_id` and cut session `session_id` to before the call it preceded."""
    try:
        full = snapshots.resolve(snapshot_id)
    except SnapshotError as exc:
        raise SessionError(str(exc)) from exc
    path = store.root / "sessions" / f"{session_id}.jsonl"
    records = list(read_records(path))
    call_id = _main_call(records, full)
    if call_id is None:
        raise SessionError(f"snapshot {full[:12]} was not taken in session {session_id}")
    history = restore(path).history
    cut = _cut_before(history, call_id)
    if cut is None:
        raise SessionError(f"the call before snapshot {full[:12]} is no longer in the "
                           "conversation (it was compacted away)")
    undo_id = snapshots.restore(full)
    log, _ = store.open(session_id)
    try:
        log.append("rewind", snapshot=full, undo_snapshot=undo_id,
                   messages=[m.to_openai() for m in history[:cut]])
    finally:
        log.close()
    return Rewound(full, cut, len(history) - cut, undo_id)


def _main_call(records: list[dict[str, Any]], snapshot: str) -> str | None:
    """The parent's call id the snapshot preceded (a sub-agent's: its Task call's)."""
    starts = {r["agent"]: r.get("parent_call") for r in records
              if r["kind"] == "subagent" and r.get("event") == "start"}
    for r in records:
        if r["kind"] == "snapshot" and r["id"] == snapshot:
            agent = r.get("agent", "main")
            return r.get("call_id") if agent == "main" else starts.get(agent)
    return None


def _cut_before(history: list[Message], call_id: str) -> int | None:
    """Index of the assistant message that made `call_id` (the first message to drop)."""
    for i in range(len(history) - 1, -1, -1):
        m = history[i]
        if m.role == "assistant" and any(c.id == call_id for c in m.tool_calls):
            return i
    return None


def snapshot_store(workspace: Path) -> SnapshotStore:
    """The workspace's snapshot store (the guard's), as a `SessionError` when unusable."""
    try:
        return SnapshotStore(workspace)
    except SnapshotError as exc:
        raise SessionError(str(exc)) from exc
