"""`openk2 swarm` as a real subprocess against a real local OpenAI-protocol server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from swarm_scripts import (
    echo_worker,
    fan_out,
    is_orchestrator,
    last_tool_output,
    route,
    steps_done,
    task_of,
)

from openk2.agent.llm import RateLimitError
from openk2.agent.llm.scripted import Reply, call
from openk2.agent.swarm import open_run_store
from openk2.agent.swarm.launcher import options_for_resume

CLI = [sys.executable, "-c", "from openk2.cli import main; main()", "swarm"]


async def _cli(*args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENK2_")}
    return await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )


def _key(c) -> tuple[str, int]:
    return ("main" if is_orchestrator(c) else task_of(c), steps_done(c) + 1)


def _logged(run_dir: Path, run_id: str) -> set[tuple[str, int]]:
    store = open_run_store(run_dir, run_id, must_exist=True)
    tasks, out = {"main": "main"}, set()
    for ev in store.events():
        if ev.kind == "spawn":
            tasks[ev.agent_id] = ev.data["prompt"]
        elif ev.kind == "llm":
            out.add((tasks[ev.agent_id], ev.step))
    store.close()
    return out


async def test_cli_json_summary_with_429s_trace_and_spans(openai_server, tmp_path) -> None:
    ok = route(fan_out([f"row{i}" for i in range(5)]), echo_worker(steps=2))
    limited: set[str] = set()

    def handler(c):
        if not is_orchestrator(c) and task_of(c) not in limited:
            limited.add(task_of(c))
            return RateLimitError("busy", retry_after=0.05)
        return ok(c)

    server = await openai_server(handler)
    proc = await _cli("Fill five rows.", "--base-url", server.base_url, "--model", "fake",
                      "--run-dir", str(tmp_path), "--run-id", "r1", "--json",
                      "--price", "1000000,2000000")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["run_id"] == "r1" and summary["state"] == "completed"
    assert summary["agents"] == 5 and summary["steps"] == 2 + 5 * 2
    assert summary["critical_steps"] == 1 + 2 + 1 and summary["failures"] == []
    assert summary["usage"]["total_tokens"] > 0 and "completed: 5" in summary["answer"]
    usage = summary["usage"]
    assert summary["cost_usd"] == usage["prompt_tokens"] + 2 * usage["completion_tokens"]
    assert len(server.requests) == 2 + 5 * 2 + 5  # five 429s re-driven
    trace = (tmp_path / "r1" / "trace.jsonl").read_text().splitlines()
    assert json.loads(trace[0])["kind"] == "run" and json.loads(trace[-1])["kind"] == "final"
    spans = tmp_path / "r1" / "spans.jsonl"
    if spans.exists():  # the otel extra is installed
        names = [json.loads(line)["name"] for line in spans.read_text().splitlines()]
        assert names.count("agent worker") == 5 and "swarm.run" in names


async def test_kill_9_then_resume_redoes_no_completed_step(openai_server, tmp_path) -> None:
    script = route(fan_out([f"part{i}" for i in range(8)]), echo_worker(delay=0.1, steps=4))
    seen: list[tuple[str, int]] = []
    enough = asyncio.Event()

    def handler(c):
        seen.append(_key(c))
        if len(seen) >= 16:
            enough.set()
        return script(c)

    server = await openai_server(handler)
    proc = await _cli("Do eight parts.", "--base-url", server.base_url, "--model", "fake",
                      "--run-dir", str(tmp_path), "--run-id", "k9", "--json", "--max-rps", "500")
    await asyncio.wait_for(enough.wait(), 60)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    before = _logged(tmp_path, "k9")
    assert 6 <= len(before) < 2 + 8 * 4
    assert options_for_resume(tmp_path, "k9", None).max_rps == 500  # the resume keeps it
    cut = len(seen)

    proc = await _cli("--resume", "k9", "--run-dir", str(tmp_path), "--json")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["state"] == "completed" and summary["steps"] == 2 + 8 * 4
    assert summary["agents"] == 8 and "completed: 8, failed: 0" in summary["answer"]
    assert set(seen[cut:]) & before == set()  # no logged step was requested again
    assert _logged(tmp_path, "k9") == {("main", 1), ("main", 2)} | {
        (f"Research part{i}.", s) for i in range(8) for s in range(1, 5)}


def _cut_before(run_dir: Path, run_id: str, kind: str) -> None:
    """Make the log what a kill -9 just before the first `kind` event would leave."""
    with sqlite3.connect(run_dir / run_id / "events.sqlite") as db:
        (seq,) = db.execute("SELECT MIN(seq) FROM events WHERE kind = ?", (kind,)).fetchone()
        db.execute("DELETE FROM events WHERE seq >= ?", (seq,))


async def test_cli_resume_does_not_call_the_model_for_agents_that_had_answered(
        openai_server, tmp_path) -> None:
    script = route(fan_out(["x", "y"]), echo_worker(steps=2))
    seen: list[tuple[str, int]] = []
    server = await openai_server(lambda c: seen.append(_key(c)) or script(c))
    proc = await _cli("Two parts.", "--base-url", server.base_url, "--model", "fake",
                      "--run-dir", str(tmp_path), "--run-id", "cut", "--json")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    answer = json.loads(out)["answer"]
    for kind in ("done", "final"):
        _cut_before(tmp_path, "cut", kind)  # a worker's (then main's) answer is logged, no more
        logged, cut = _logged(tmp_path, "cut"), len(seen)
        proc = await _cli("--resume", "cut", "--run-dir", str(tmp_path), "--json")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        summary = json.loads(out)
        assert set(seen[cut:]).isdisjoint(logged), kind  # no logged step is asked again
        assert ("main", 2) in seen[cut:] if kind == "done" else seen[cut:] == []
        assert summary["answer"] == answer and summary["steps"] == 2 + 2 * 2


async def test_cli_workspace_gives_sub_agents_the_direct_tools(openai_server, tmp_path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for name in ("a", "b"):
        (workspace / f"{name}.txt").write_text(f"owner: {name}-team")

    def worker(c):
        if steps_done(c) == 0:
            path = task_of(c).removeprefix("Read ").rstrip(".")
            return Reply(tool_calls=[call("read_file", 0, path=path)])
        return Reply(text=last_tool_output(c))

    script = route(fan_out(["a.txt", "b.txt"], "Read {{item}}."), worker)
    worker_tools: set[str] = set()

    def handler(c):
        if not is_orchestrator(c):
            worker_tools.update(t.name for t in c.tools)
        return script(c)

    server = await openai_server(handler)
    proc = await _cli("Read two files.", "--base-url", server.base_url, "--model", "fake",
                      "--run-dir", str(tmp_path / "runs"), "--workspace", str(workspace),
                      "--json")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    answer = json.loads(out)["answer"]
    assert "owner: a-team" in answer and "owner: b-team" in answer
    assert worker_tools >= {"calculator", "read_file", "kv_get", "kv_set"}


async def test_cli_reports_bad_usage(tmp_path) -> None:
    proc = await _cli("--resume", "ghost", "--run-dir", str(tmp_path))
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"no run 'ghost'" in err
    proc = await _cli("task only")
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"missing --base-url, --model" in err
    proc = await _cli("t", "--base-url", "http://x/v1", "--model", "m", "--price", "cheap")
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"expected IN,OUT" in err
    proc = await _cli("t", "--base-url", "http://x/v1", "--model", "m", "--max-rps", "0")
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"--max-rps" in err
    proc = await _cli("t", "--base-url", "http://x/v1", "--model", "m", "--backend", "k8s")
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"expected one of local, ray" in err


async def test_cli_ray_backend_runs_sub_agents_as_ray_tasks_and_resumes_exactly(
        openai_server, tmp_path) -> None:
    pytest.importorskip("ray")
    script = route(fan_out(["x", "y", "z"]), echo_worker(steps=2))
    seen: list[tuple[str, int]] = []
    server = await openai_server(lambda c: seen.append(_key(c)) or script(c))
    proc = await _cli("Three parts.", "--base-url", server.base_url, "--model", "fake",
                      "--run-dir", str(tmp_path), "--run-id", "ray", "--json",
                      "--backend", "ray", "--ray-cpus", "2")
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()
    first = json.loads(out)
    assert first["state"] == "completed" and first["agents"] == 3
    assert first["steps"] == 2 + 3 * 2 and "completed: 3, failed: 0" in first["answer"]
    assert options_for_resume(tmp_path, "ray", None).backend == "ray"  # stored for resume
    assert _worker_steps_contiguous(tmp_path, "ray")  # logged per returned Ray task
    _cut_before(tmp_path, "ray", "done")  # a kill -9 before any worker's answer was logged
    logged, cut = _logged(tmp_path, "ray"), len(seen)
    proc = await _cli("--resume", "ray", "--run-dir", str(tmp_path), "--json",
                      "--ray-cpus", "2")
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert set(seen[cut:]).isdisjoint(logged)  # no logged step is requested again
    assert summary["answer"] == first["answer"] and summary["steps"] == first["steps"]
    assert _logged(tmp_path, "ray") == {("main", 1), ("main", 2)} | {
        (f"Research {p}.", s) for p in "xyz" for s in (1, 2)}


def _worker_steps_contiguous(run_dir: Path, run_id: str) -> bool:
    """True when each sub-agent's LLM steps sit together in the log, as a remote backend
    logs them (in bulk when the job returns); concurrent local sub-agents interleave."""
    store = open_run_store(run_dir, run_id, must_exist=True)
    order = [ev.agent_id for ev in store.events() if ev.kind == "llm" and ev.agent_id != "main"]
    store.close()
    runs = [a for i, a in enumerate(order) if i == 0 or order[i - 1] != a]
    return len(runs) == len(set(order)) > 1
