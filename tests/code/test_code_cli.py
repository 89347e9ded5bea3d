"""`openk2 code -p` as a real subprocess against a scripted OpenAI-protocol HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from openk2.agent.guard import unmark
from openk2.agent.llm.scripted import ChatCall, Reply, call

CLI = [sys.executable, "-c", "from openk2.cli import main; main()", "code"]


async def _cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ))


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def _steps(c: ChatCall) -> int:
    return sum(m.role == "assistant" for m in c.messages)


def _by_step(*replies: Reply):
    return lambda c: replies[_steps(c)]


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    return ws


async def test_headless_json_summary(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("ReadFile", 0, path="calc.py")]),
        Reply(tool_calls=[call("StrReplaceFile", 0, path="calc.py",
                               edit={"old": "a - b", "new": "a + b"})]),
        Reply(tool_calls=[call("Shell", 0, command="grep -n 'a + b' calc.py")]),
        Reply(text="add() fixed."),
    ))
    proc = await _cli("-p", "Fix add", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--mode", "auto", "--output-format", "json")
    code, out, err = await _finish(proc)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["result"] == "add() fixed."
    assert summary["steps"] == 4 and summary["tool_calls"] == 3
    assert summary["denied_calls"] == [] and summary["usage"]["total_tokens"] > 0
    assert summary["v"] == 1 and summary["session_id"]
    assert (ws / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    last = server.requests[-1]["messages"][-1]
    assert last["role"] == "tool" and "2:    return a + b" in last["content"]
    tools = {t["function"]["name"] for t in server.requests[0]["tools"]}
    assert tools == {"ReadFile", "WriteFile", "StrReplaceFile", "Glob", "Grep", "Shell",
                     "SetTodoList", "Task"}


async def test_headless_manual_denies_what_would_ask(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("WriteFile", 0, path="new.txt", content="x")]),
        Reply(text="I was not allowed to write."),
    ))
    proc = await _cli("-p", "write", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--output-format", "stream-json")
    code, out, _ = await _finish(proc)
    assert code == 3
    events = [json.loads(line) for line in out.splitlines()]
    assert all(e["v"] == 1 for e in events)
    assert [e["type"] for e in events] == ["session", "user", "assistant", "verdict",
                                           "tool_result", "assistant", "result"]
    assert events[3]["decision"] == "deny" and events[4]["ok"] is False
    assert events[-1]["status"] == "denied" and len(events[-1]["denied_calls"]) == 1
    assert not (ws / "new.txt").exists()


async def test_headless_text_and_max_steps(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    server = await fake_llm(lambda c: Reply(
        tool_calls=[call("ReadFile", _steps(c), path="calc.py", line_offset=1 + _steps(c) % 2)]))
    proc = await _cli("-p", "loop", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--max-steps", "3")
    code, _, err = await _finish(proc)
    assert code == 4 and "max_steps" in err and len(server.requests) == 3


async def test_bad_usage_is_reported(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    code, _, err = await _finish(await _cli("-p", "x", "-w", str(ws)))
    assert code == 2 and "missing --base-url, --model" in err
    code, _, err = await _finish(await _cli("-p", "x", "-w", str(tmp_path / "nope")))
    assert code == 2 and "not a directory" in err
    code, _, err = await _finish(await _cli("--resume", "ghost", "-w", str(ws),
                                            "--base-url", "http://127.0.0.1:9/v1", "--model", "m"))
    assert code == 2 and "no session 'ghost'" in err
    code, _, err = await _finish(await _cli("-p", "x", "--output-format", "xml"))
    assert code == 2 and "--output-format" in err


async def test_kill_9_mid_tool_call_then_continue(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    long_call = "echo $$ > pgid; echo started >> marker; sleep 60"
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("Shell", 0, command="echo once >> ran.txt")]),
        Reply(tool_calls=[call("Shell", 1, command=long_call)]),
        Reply(text="recovered"),
    ))
    args = ["--base-url", server.base_url, "--model", "fake", "-w", str(ws), "--mode", "yolo",
            "--no-sandbox", "--output-format", "json"]
    proc = await _cli("-p", "do two things", *args)
    for _ in range(600):
        if (ws / "marker").exists():
            break
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
        os.killpg(int((ws / "pgid").read_text()), signal.SIGKILL)
    assert len(server.requests) == 2
    code, out, err = await _finish(await _cli("--continue", *args))
    assert code == 0, err
    assert json.loads(out)["result"] == "recovered"
    sent = server.requests[-1]["messages"]
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert unmark(sent[3]["content"]) == "(no output)" and "interrupted" in sent[5]["content"]
    assert (ws / "ran.txt").read_text() == "once\n"
    assert (ws / "marker").read_text() == "started\n"


async def test_mcp_tools_through_the_gate(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    config = tmp_path / "mcp.json"
    server_py = Path(__file__).parent / "mcp_demo_server.py"
    config.write_text(json.dumps({"mcpServers": {"demo": {"command": sys.executable,
                                                          "args": [str(server_py)]}}}))
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("mcp__demo__add", 0, a=2, b=3)]),
        Reply(tool_calls=[call("mcp__demo__note", 0, text="hello")]),
        Reply(text="done"),
    ))
    proc = await _cli("-p", "use mcp", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--mode", "auto", "--mcp-config", str(config),
                      "--output-format", "json")
    code, out, err = await _finish(proc)
    assert code == 3, err
    specs = {t["function"]["name"]: t["function"] for t in server.requests[0]["tools"]}
    assert specs["mcp__demo__add"]["parameters"]["required"] == ["a", "b"]
    results = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert "untrusted-data" in results[0] and "\n5\n" in results[0]
    assert "approval" in results[1] and not (ws / "notes.log").exists()
    assert json.loads(out)["denied_calls"][0]["tool"] == "mcp__demo__note"


async def test_positional_task_without_a_terminal_runs_headless(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("ReadFile", 0, path="calc.py")]),
        Reply(text="read it."),
    ))
    proc = await _cli("Read calc.py", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--mode", "auto", "--output-format", "json")
    code, out, err = await _finish(proc)
    assert code == 0, err
    assert json.loads(out)["result"] == "read it."
    assert server.requests[0]["messages"][1] == {"role": "user", "content": "Read calc.py"}
    assert "thinking" not in server.requests[0]  # the endpoint's default unless asked


async def test_no_thinking_flag_reaches_the_endpoint(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    server = await fake_llm(_by_step(Reply(text="instant.")))
    proc = await _cli("-p", "hi", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--no-thinking", "--output-format", "json")
    code, _, err = await _finish(proc)
    assert code == 0, err
    body = server.requests[0]
    assert body["thinking"] == {"type": "disabled"}
    assert body["chat_template_kwargs"] == {"thinking": False}


async def test_positional_task_and_prompt_together_are_refused(tmp_path: Path) -> None:
    proc = await _cli("one task", "-p", "another", "-w", str(_workspace(tmp_path)))
    code, out, err = await _finish(proc)
    assert code == 2 and "not both" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def _http_mcp_server(cwd: Path):
    """The demo MCP server over streamable HTTP on 127.0.0.1, yielding its endpoint URL."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).parent / "mcp_demo_server.py"), "--http", str(port),
        cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        await proc.wait()


async def test_mcp_over_streamable_http(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("mcp__web__add", 0, a=20, b=22)]),
        Reply(tool_calls=[call("mcp__web__auth", 0)]),
        Reply(tool_calls=[call("mcp__web__note", 0, text="hello")]),
        Reply(text="done"),
    ))
    async with _http_mcp_server(tmp_path) as url:
        config = tmp_path / "mcp.json"
        config.write_text(json.dumps({"mcpServers": {"web": {
            "url": url, "headers": {"Authorization": "Bearer t0ken"}}}}))
        proc = await _cli("-p", "use mcp", "--base-url", server.base_url, "--model", "fake",
                          "-w", str(ws), "--mode", "auto", "--mcp-config", str(config),
                          "--output-format", "json")
        code, out, err = await _finish(proc)
    assert code == 3, err
    names = {t["function"]["name"] for t in server.requests[0]["tools"]}
    assert {"mcp__web__add", "mcp__web__note"} <= names
    results = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert "untrusted-data" in results[0] and "\n42\n" in results[0]
    assert "Bearer t0ken" in results[1]
    assert "approval" in results[2] and not (tmp_path / "notes.log").exists()
    assert json.loads(out)["denied_calls"][0]["tool"] == "mcp__web__note"


async def test_hooks_fail_closed_and_project_rules(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "openk2" / "code.toml"
    config.parent.mkdir(parents=True)
    config.write_text((Path(__file__).parent / "hooks.toml").read_text())
    (ws / ".openk2").mkdir()
    (ws / ".openk2" / "code.toml").write_text(
        '[[rules]]\nname = "no-glob"\ndecision = "deny"\npattern = "ls"\nmatch = ["ls -l"]\n')
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("Shell", 0, command="true"), call("Shell", 1, command="ls -l")]),
        Reply(tool_calls=[call("ReadFile", 0, path="calc.py")]),
        Reply(text="first stop"),
        Reply(text="second stop"),
    ))
    proc = await _cli("-p", "go", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--mode", "yolo", "--output-format", "json")
    code, out, err = await _finish(proc)
    assert code == 3, out + err
    summary = json.loads(out)
    assert summary["result"] == "second stop"
    rules = sorted(d["rule"] for d in summary["denied_calls"])
    assert rules[0].startswith("hook:") and rules[1] == "no-glob"
    sent = server.requests[-1]["messages"]
    tools = [m["content"] for m in sent if m["role"] == "tool"]
    assert "PreToolUse hook blocked" in tools[0] and "denied by policy" in tools[1]
    assert "[PostToolUse hook] style check failed" in tools[2]
    assert sent[-1]["role"] == "user" and "run the tests" in sent[-1]["content"]


async def test_project_may_not_allow(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    (ws / ".openk2").mkdir()
    (ws / ".openk2" / "code.toml").write_text('[[rules]]\ndecision = "allow"\npattern = "rm"\n')
    code, _, err = await _finish(await _cli("-p", "x", "-w", str(ws), "--base-url",
                                            "http://127.0.0.1:9/v1", "--model", "m"))
    assert code == 2 and "only `deny` or `ask` rules" in err


async def test_add_dir_is_writable_and_nothing_else(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    extra, other = tmp_path / "extra", tmp_path / "other"
    extra.mkdir()
    other.mkdir()
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("WriteFile", 0, path=str(extra / "a.txt"), content="ok"),
                          call("WriteFile", 1, path=str(other / "b.txt"), content="no")]),
        Reply(text="done"),
    ))
    proc = await _cli("-p", "write", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--add-dir", str(extra), "--mode", "auto",
                      "--output-format", "json")
    code, out, err = await _finish(proc)
    assert code == 3, err
    assert (extra / "a.txt").read_text() == "ok" and not (other / "b.txt").exists()
    assert [d["tool"] for d in json.loads(out)["denied_calls"]] == ["WriteFile"]
    system = server.requests[0]["messages"][0]["content"]
    assert str(extra) in system and str(ws) in system


async def test_rate_limits_and_server_errors_are_retried(fake_llm, tmp_path: Path) -> None:
    from openk2.agent.llm import ProviderStatusError, RateLimitError

    ws = _workspace(tmp_path)
    failures = iter([RateLimitError("slow down", retry_after=0.05),
                     ProviderStatusError(503, "busy", retry_after=0.05)])

    def handler(c: ChatCall):
        return next(failures, None) or Reply(text="answered after retries")

    server = await fake_llm(handler)
    proc = await _cli("-p", "hi", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--output-format", "json")
    code, out, err = await _finish(proc)
    assert code == 0, err
    assert json.loads(out)["result"] == "answered after retries" and len(server.requests) == 3


async def test_allow_host_opens_only_that_host(fake_llm, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    hits: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(200))
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    sink = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = sink.sockets[0].getsockname()[1]
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("Shell", 0, command=f"curl -s -m 5 http://127.0.0.1:{port}/ok")]),
        Reply(tool_calls=[call("Shell", 0, command="curl -s -m 5 http://example.org/")]),
        Reply(text="done"),
    ))
    proc = await _cli("-p", "fetch", "--base-url", server.base_url, "--model", "fake",
                      "-w", str(ws), "--mode", "yolo", "--allow-host", f"127.0.0.1:{port}",
                      "--output-format", "json")
    code, _, err = await _finish(proc)
    sink.close()
    assert code == 0, err
    results = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert unmark(results[0]).startswith("hello") and "Traceback" not in results[0]
    assert len(hits) == 1
    assert "not in the network allowlist" in results[1]


@pytest.mark.slow
async def test_embedded_model_through_a_local_server(tmp_path: Path) -> None:
    """`--model embedded` starts `openk2 serve --model embedded` and talks to it (torch)."""
    ws = _workspace(tmp_path)
    proc = await _cli("-p", "What is in calc.py?", "--model", "embedded", "-w", str(ws),
                      "--max-steps", "2", "--output-format", "json")
    out, err = await asyncio.wait_for(proc.communicate(), 600)
    summary = json.loads(out)
    assert summary["steps"] >= 1 and summary["usage"]["prompt_tokens"] > 0, err.decode()
    assert summary["status"] in ("completed", "max_steps", "denied", "loop")


async def test_help_imports_no_torch() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-c", "from openk2.cli import main; main()",
        "code", "--help", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and b"--output-format" in out
    imported = {line.split("|")[-1].strip() for line in err.decode().splitlines() if "|" in line}
    assert "openk2.cli.code_commands" in imported
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}


async def test_rewind_restores_files_and_cuts_the_conversation(fake_llm, tmp_path: Path) -> None:
    from openk2.code.sessions import read_records

    ws = _workspace(tmp_path)
    server = await fake_llm(_by_step(
        Reply(tool_calls=[call("ReadFile", 0, path="calc.py")]),
        Reply(tool_calls=[call("StrReplaceFile", 1, path="calc.py",
                               edit={"old": "a - b", "new": "a + b"})]),
        Reply(text="add() fixed."),
    ))
    base = ("--base-url", server.base_url, "--model", "fake", "-w", str(ws), "--mode", "auto",
            "--no-sandbox")
    code, out, err = await _finish(await _cli("-p", "Fix add", *base, "--output-format", "json"))
    assert code == 0, err
    sid = json.loads(out)["session_id"]
    log = tmp_path / "code-state" / "sessions" / f"{sid}.jsonl"
    snaps = [r for r in read_records(log) if r["kind"] == "snapshot"]
    assert len(snaps) == 1 and snaps[0]["call_id"] == "functions.StrReplaceFile:1"
    assert "a + b" in (ws / "calc.py").read_text()

    code, _, err = await _finish(await _cli("--rewind", snaps[0]["id"][:10], "--continue", *base))
    assert code == 0, err
    assert "rewound session" in err and "3 later messages dropped" in err
    assert (ws / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"

    again = await fake_llm(lambda c: Reply(text="left as it was"))
    args = [a if a != server.base_url else again.base_url for a in base]
    code, _, err = await _finish(await _cli("-p", "never mind", "--continue", *args))
    assert code == 0, err
    sent = again.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[2]["tool_calls"][0]["function"]["name"] == "ReadFile"

    code, _, err = await _finish(await _cli("--rewind", "abc123", "--continue", *base))
    assert code == 2 and "unknown" in err
