"""The swarm tools in a coding session: workers fan out with the read-only tools only."""

from __future__ import annotations

from pathlib import Path

from code_doubles import FixedGate, session

from openk2.agent.llm import Usage
from openk2.agent.llm.scripted import Reply, call
from openk2.code.sessions import read_records


async def test_assign_task_runs_a_read_only_worker(tmp_path: Path) -> None:
    script = [
        Reply(tool_calls=[call("assign_task", 0, agent="worker", prompt="What does a.txt say?")],
              usage=Usage(100, 10)),
        Reply(tool_calls=[call("WriteFile", 0, path="a.txt", content="overwritten"),
                          call("ReadFile", 1, path="a.txt")], usage=Usage(40, 4)),
        Reply(text="a.txt says hello", usage=Usage(50, 5)),
        Reply(text="The worker found: hello", usage=Usage(300, 30)),
    ]
    gate = FixedGate()
    s, provider, ws = session(tmp_path, script, gate=gate, swarm=True)
    (ws.root / "a.txt").write_text("hello\n")
    s.add_user("ask a worker")
    summary = await s.run()
    assert summary.status == "completed" and summary.result == "The worker found: hello"
    assert {"create_subagent", "assign_task", "swarm"} <= {t.name for t in provider.calls[0].tools}
    assert {t.name for t in provider.calls[1].tools} == {"ReadFile", "Glob", "Grep"}
    worker_results = [m.content for m in provider.calls[2].messages if m.role == "tool"]
    assert "no tool named 'WriteFile'" in worker_results[0]
    assert "hello" in worker_results[1]
    assert (ws.root / "a.txt").read_text() == "hello\n"
    assert [a.tool for a in gate.seen] == ["assign_task", "ReadFile"]  # both met the gate
    back = [m.content for m in provider.calls[3].messages if m.role == "tool"][0]
    assert "a.txt says hello" in back
    assert summary.usage == Usage(490, 49)
    path = tmp_path / "state" / "sessions" / f"{summary.session_id}.jsonl"
    events = [r["event"] for r in read_records(path) if r["kind"] == "swarm"]
    assert "spawn" in events and "llm" in events and "done" in events
