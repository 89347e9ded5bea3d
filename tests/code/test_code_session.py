"""Tier A: a scripted model drives whole sessions through the real tools and session log."""

from __future__ import annotations

import json
from pathlib import Path

from code_doubles import FixedGate, session

from openk2.agent.guard import is_marked, unmark
from openk2.agent.llm import Message, Usage, tool_result
from openk2.agent.llm.scripted import Reply, call
from openk2.code.gate import Verdict
from openk2.code.sessions import INTERRUPTED, read_records


def _log(tmp: Path, sid: str) -> list[dict]:
    return list(read_records(tmp / "state" / "sessions" / f"{sid}.jsonl"))


async def test_read_edit_shell_answer(tmp_path: Path) -> None:
    script = [
        Reply(tool_calls=[call("ReadFile", 0, path="calc.py")]),
        Reply(tool_calls=[call("StrReplaceFile", 0, path="calc.py",
                               edit={"old": "a - b", "new": "a + b"})]),
        Reply(tool_calls=[call("Shell", 0,
                               command="python3 -c 'import calc; print(calc.add(2, 3))'")]),
        Reply(text="Fixed add(); it prints 5."),
    ]
    events: list[dict] = []
    s, provider, ws = session(tmp_path, script, emit=events.append)
    (ws.root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    s.add_user("Fix add in calc.py")
    summary = await s.run()
    assert summary.status == "completed" and summary.exit_code == 0
    assert summary.result == "Fixed add(); it prints 5." and summary.steps == 4
    assert summary.tool_calls == 3 and summary.denied == []
    assert (ws.root / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    tool_msgs = [m for m in provider.calls[3].messages if m.role == "tool"]
    assert "     2\t    return a - b" in tool_msgs[0].content
    assert is_marked(tool_msgs[2].content) and unmark(tool_msgs[2].content).strip() == "5"
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session" and kinds[-1] == "result" and kinds.count("tool_result") == 3
    assert all(e["v"] == 1 for e in events)
    records = _log(tmp_path, summary.session_id)
    roles = [r["message"]["role"] for r in records if r["kind"] == "message"]
    assert roles == ["system", "user"] + ["assistant", "tool"] * 3 + ["assistant"]
    assert records[-1]["kind"] == "end" and records[-1]["status"] == "completed"


async def test_tool_errors_go_back_to_the_model(tmp_path: Path) -> None:
    script = [
        Reply(tool_calls=[call("ReadFile", 0, path="missing.txt"),
                          call("NoSuchTool", 1),
                          call("StrReplaceFile", 2, path="a.txt",
                               edit={"old": "helo wrld", "new": "x"})]),
        Reply(text="done"),
    ]
    s, provider, ws = session(tmp_path, script)
    (ws.root / "a.txt").write_text("first\nhello world\nlast\n")
    s.add_user("go")
    summary = await s.run()
    assert summary.status == "completed"
    results = [m.content for m in provider.calls[1].messages if m.role == "tool"]
    assert "missing.txt is not found" in results[0]
    assert "no tool named 'NoSuchTool'" in results[1]
    assert "starts at line 2" in results[2] and "hello world" in results[2]
    assert (ws.root / "a.txt").read_text() == "first\nhello world\nlast\n"


async def test_denied_call_is_reported_and_exits_nonzero(tmp_path: Path) -> None:
    def rule(action):
        if action.kind == "exec":
            return Verdict("ask", "shell commands need approval", "test-ask")
        return Verdict("allow", "ok")

    gate = FixedGate(rule)
    script = [Reply(tool_calls=[call("Shell", 0, command="touch made.txt")]),
              Reply(text="I could not run it.")]
    s, provider, ws = session(tmp_path, script, gate=gate)
    s.add_user("make a file")
    summary = await s.run()
    assert summary.status == "denied" and summary.exit_code == 3
    assert not (ws.root / "made.txt").exists()
    assert summary.denied[0]["tool"] == "Shell" and summary.denied[0]["rule"] == "test-ask"
    told = [m.content for m in provider.calls[1].messages if m.role == "tool"][0]
    assert "denied by the safety policy" in told and "not approved" in told
    verdicts = [r for r in _log(tmp_path, summary.session_id) if r["kind"] == "verdict"]
    assert verdicts[0]["decision"] == "deny"


async def test_loop_guard_stops_repeated_calls(tmp_path: Path) -> None:
    same = Reply(tool_calls=[call("Glob", 0, pattern="*.txt")])
    s, provider, _ = session(tmp_path, [same] * 10, repeat_limit=3)
    s.add_user("list")
    summary = await s.run()
    # two plain results, then the reminder (a new result) three times in a row: stop
    assert summary.status == "loop" and summary.steps == 5 and summary.exit_code == 5
    last = [m for m in s.parts.history if m.role == "tool"][-1]
    assert "[repeat guard]" in last.content


async def test_repeat_guard_refuses_calls_whose_result_changes(tmp_path: Path) -> None:
    changing = Reply(tool_calls=[call("Shell", 0, command="date +%s%N")])
    s, _, ws = session(tmp_path, [changing] * 20, repeat_limit=3)
    s.add_user("time")
    summary = await s.run()
    assert summary.status == "loop" and summary.steps == 8
    tools = [m.content for m in s.parts.history if m.role == "tool"]
    assert "not run" in tools[5] and tools[5] == tools[7]


async def test_max_steps(tmp_path: Path) -> None:
    script = [Reply(tool_calls=[call("Shell", i, command=f"echo {i}")]) for i in range(5)]
    s, _, _ = session(tmp_path, script, max_steps=2)
    s.add_user("count")
    summary = await s.run()
    assert summary.status == "max_steps" and summary.steps == 2 and summary.exit_code == 4
    assert "2 steps" in (summary.error or "")


async def test_compaction_keeps_recent_steps_and_the_task(tmp_path: Path) -> None:
    big = Usage(prompt_tokens=900, completion_tokens=10)
    script = [
        Reply(tool_calls=[call("Shell", 0, command="echo one")], usage=Usage(100, 10)),
        Reply(tool_calls=[call("Shell", 1, command="echo two")], usage=Usage(200, 10)),
        Reply(tool_calls=[call("Shell", 2, command="echo three")], usage=big),
        Reply(text="SUMMARY: ran one and two"),  # the compaction call
        Reply(text="all done"),
    ]
    events: list[dict] = []
    s, provider, _ = session(tmp_path, script, emit=events.append, context_window=1000)
    s.add_user("run three echos")
    summary = await s.run()
    assert summary.status == "completed" and summary.result == "all done"
    summarise = provider.calls[3]
    assert summarise.tools == () and "echo one" in summarise.messages[-1].content
    after = provider.calls[4].messages
    assert after[0].role == "system" and after[1].role == "user"
    assert "run three echos" in after[1].content and "SUMMARY: ran one and two" in after[1].content
    assert [m.role for m in after[2:]] == ["assistant", "tool", "assistant", "tool"]
    assert "echo two" in after[2].tool_calls[0].arguments
    compaction = [e for e in events if e["type"] == "compaction"][0]
    assert compaction["tokens_before"] == 910 and compaction["messages_after"] == 6
    records = _log(tmp_path, summary.session_id)
    assert any(r["kind"] == "compaction" for r in records)
    json.dumps(records)


async def test_resume_restores_conversation_and_todos(tmp_path: Path) -> None:
    todos = [{"title": "read", "status": "done"}, {"title": "fix", "status": "pending"}]
    s, _, _ = session(tmp_path, [Reply(tool_calls=[call("SetTodoList", 0, todos=todos)]),
                                 Reply(text="first answer")])
    s.add_user("first task")
    first = await s.run()
    s2, provider, _ = session(tmp_path, [Reply(text="second answer")], resume=first.session_id)
    assert [t.title for t in s2.parts.todos.items] == ["read", "fix"]
    s2.add_user("second task")
    second = await s2.run()
    assert second.session_id == first.session_id and second.result == "second answer"
    sent = provider.calls[0].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[4].content == "first answer" and sent[5].content == "second task"


async def test_resume_repairs_a_half_finished_parallel_step(tmp_path: Path) -> None:
    s, _, ws = session(tmp_path, [Reply(text="unused")])
    s.add_user("two things")
    calls = (call("Shell", 0, command="echo a >> a.txt"),
             call("Shell", 1, command="echo b >> b.txt"))
    s.log.message(Message(role="assistant", tool_calls=calls))  # the step began
    s.log.message(tool_result(calls[1].id, "b done"))  # only the second call returned
    with s.log.path.open("a") as f:
        f.write('{"v": 1, "kind": "message", "message": {"role": "to')  # torn by the kill
    s.log.close()
    gate = FixedGate()
    s2, provider, _ = session(tmp_path, [Reply(text="resumed")], gate=gate, resume=s.log.id)
    summary = await s2.run()
    assert summary.result == "resumed" and gate.seen == []  # nothing was re-run
    sent = provider.calls[0].messages
    assert [m.role for m in sent[-3:]] == ["assistant", "tool", "tool"]
    assert sent[-2].content == INTERRUPTED and sent[-1].content == "b done"
    assert not (ws.root / "a.txt").exists() and not (ws.root / "b.txt").exists()
