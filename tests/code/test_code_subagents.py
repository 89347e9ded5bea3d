"""The Task tool: sub-agents with their own context, the parent's safety layers, a summary back."""

from __future__ import annotations

from pathlib import Path

from code_doubles import session

from openk2.agent.guard import is_marked, unmark
from openk2.agent.llm import Usage
from openk2.agent.llm.scripted import Reply, ScriptedProvider, call
from openk2.code.build import open_session
from openk2.code.config import CodeSettings
from openk2.code.gate import Action
from openk2.code.safety import build_safety
from openk2.code.sessions import SessionStore, read_records
from openk2.code.subagents import read_only_gate
from openk2.code.workspace import Workspace


def _records(tmp: Path, sid: str, kind: str) -> list[dict]:
    path = tmp / "state" / "sessions" / f"{sid}.jsonl"
    return [r for r in read_records(path) if r["kind"] == kind]


async def test_explore_cannot_write_and_returns_a_summary(tmp_path: Path) -> None:
    script = [
        Reply(tool_calls=[call("Task", 0, description="find add", prompt="Where is add()?",
                               subagent_type="explore")], usage=Usage(100, 10)),
        Reply(tool_calls=[call("WriteFile", 0, path="pwned.txt", content="x"),
                          call("Shell", 1, command="rm calc.py")], usage=Usage(50, 5)),
        Reply(tool_calls=[call("Grep", 0, pattern="def add")], usage=Usage(60, 6)),
        Reply(text="add() is defined in calc.py line 1.", usage=Usage(70, 7)),
        Reply(text="It is in calc.py.", usage=Usage(200, 20)),
    ]
    events: list[dict] = []
    s, provider, ws = session(tmp_path, script, emit=events.append)
    (ws.root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    s.add_user("where is add?")
    summary = await s.run()
    assert summary.status == "completed" and summary.result == "It is in calc.py."
    assert {t.name for t in provider.calls[1].tools} == {"ReadFile", "Glob", "Grep"}
    sub_results = [m.content for m in provider.calls[2].messages if m.role == "tool"]
    assert all("no tool named" in r for r in sub_results)
    assert (ws.root / "calc.py").exists() and not (ws.root / "pwned.txt").exists()
    assert provider.calls[2].messages[1].content == "Where is add()?"  # its own context
    parent_sees = provider.calls[4].messages
    assert [m.role for m in parent_sees] == ["system", "user", "assistant", "tool"]
    assert is_marked(parent_sees[-1].content)  # a sub-agent's summary is data, like a file
    assert unmark(parent_sees[-1].content) == "add() is defined in calc.py line 1."
    assert summary.usage == Usage(480, 48)
    nested = _records(tmp_path, summary.session_id, "subagent")
    assert [r["event"] for r in nested] == ["start", "message", "tool_result", "tool_result",
                                            "message", "verdict", "tool_result", "message", "end"]
    assert len({r["agent"] for r in nested}) == 1 and nested[0]["agent"].startswith("explore-1-")
    assert any(e["type"] == "subagent" and e["event"] == "end" for e in events)


async def test_explore_gate_is_read_only_under_the_guard_even_in_yolo(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    ws = Workspace.open(tmp_path / "ws")
    safety = build_safety(CodeSettings(model="m", mode="yolo"), ws, sandbox=False,
                          snapshots=False)
    gate = read_only_gate(safety.gate)
    write = Action("WriteFile", "write", "write a", paths=(ws.root / "a",))
    shell = Action("Shell", "exec", "run rm", command="rm -f a")
    read = Action("ReadFile", "read", "read a", paths=(ws.root / "a",))
    assert (await gate.review(write)).decision == "deny"
    assert (await gate.review(shell)).decision == "deny"
    assert (await gate.review(read)).decision == "allow"
    # the layer under the read-only wrapper is the guard itself, in manual mode, headless
    assert (await gate.inner.review(write)).decision == "deny"  # type: ignore[attr-defined]
    assert (await gate.inner.review(shell)).decision == "deny"  # type: ignore[attr-defined]
    assert safety.gate.gate.policy.mode == "yolo"  # type: ignore[attr-defined]


async def test_coder_edit_goes_through_the_gate(tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    ws = Workspace.open(ws_dir)
    settings = CodeSettings(model="scripted", mode="manual")
    provider = ScriptedProvider([
        Reply(tool_calls=[call("Task", 0, description="fix", prompt="Write ok.txt",
                               subagent_type="coder")]),
        Reply(tool_calls=[call("WriteFile", 0, path="ok.txt", content="ok")]),
        Reply(text="I could not write ok.txt: denied."),
        Reply(text="The sub-agent was refused."),
    ])
    s = open_session(settings, ws, provider=provider, store=SessionStore(tmp_path / "state"),
                     safety=build_safety(settings, ws, sandbox=False, snapshots=False))
    s.add_user("make ok.txt")
    summary = await s.run()
    assert {t.name for t in provider.calls[1].tools} >= {"WriteFile", "Shell", "StrReplaceFile"}
    assert "Task" not in {t.name for t in provider.calls[1].tools}
    assert not (ws.root / "ok.txt").exists()
    told = [m.content for m in provider.calls[2].messages if m.role == "tool"][0]
    assert "needs" in told and "headless, so it was denied" in told
    assert summary.status == "denied" and summary.exit_code == 3
    assert summary.denied[0]["tool"] == "WriteFile"
    assert unmark(provider.calls[3].messages[-1].content) == "I could not write ok.txt: denied."
    verdicts = [r for r in _records(tmp_path, summary.session_id, "subagent")
                if r["event"] == "verdict"]
    assert verdicts[0]["decision"] == "deny" and verdicts[0]["agent"].startswith("coder-1-")


async def test_rewind_of_a_coder_edit_cuts_before_the_task_call(tmp_path: Path) -> None:
    from openk2.code.rewind import rewind, snapshot_store

    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    (ws_dir / "notes.txt").write_text("v1\n")
    ws = Workspace.open(ws_dir)
    settings = CodeSettings(model="scripted", mode="auto")
    provider = ScriptedProvider([
        Reply(tool_calls=[call("Glob", 0, pattern="*.txt")]),
        Reply(tool_calls=[call("Task", 1, description="edit", prompt="Set notes to v2",
                               subagent_type="coder")]),
        # an edit: replacing the whole of notes.txt (untracked work, no git) would ask
        Reply(tool_calls=[call("StrReplaceFile", 0, path="notes.txt",
                               edit={"old": "v1", "new": "v2"})]),
        Reply(text="notes.txt now says v2"),
        Reply(text="Done."),
    ])
    store = SessionStore(tmp_path / "state")
    s = open_session(settings, ws, provider=provider, store=store,
                     safety=build_safety(settings, ws, sandbox=False))
    s.add_user("update notes")
    summary = await s.run()
    assert summary.status == "completed" and (ws_dir / "notes.txt").read_text() == "v2\n"
    snap = _records(tmp_path, summary.session_id, "snapshot")
    assert len(snap) == 1 and snap[0]["agent"].startswith("coder-1-")
    s.log.close()
    done = rewind(store, summary.session_id, snapshot_store(ws.root), snap[0]["id"][:8])
    assert (ws_dir / "notes.txt").read_text() == "v1\n"
    assert done.kept == 4 and done.dropped == 3  # system, user, Glob call, its result
    _, restored = store.open(summary.session_id)
    assert [m.role for m in restored.history] == ["system", "user", "assistant", "tool"]
    assert restored.history[2].tool_calls[0].name == "Glob"
