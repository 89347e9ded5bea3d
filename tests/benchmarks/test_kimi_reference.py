"""The kimi-cli side of the benchmarks, without kimi-cli: its transcripts are parsed right,
every approval it asks for is answered no, and a missing or wrong install is reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import kimi_reference as kimi  # noqa: E402


def test_echo_scripts_make_one_call_then_answer() -> None:
    call, answer = kimi.echo_scripts("Shell", {"command": "rm -rf ~"})
    kind, _, payload = call.partition(": ")
    body = json.loads(payload)
    assert kind == "tool_call" and body["name"] == "Shell" and body["id"]
    assert json.loads(body["arguments"]) == {"command": "rm -rf ~"}
    assert answer == "text: done"


def test_print_transcript_collects_tool_results_and_errors() -> None:
    lines = [
        json.dumps({"role": "assistant", "content": [], "tool_calls": [{"id": "c1"}]}),
        json.dumps({"role": "tool", "tool_call_id": "c1", "content": [
            {"type": "text", "text": "<system>ERROR: Command failed with exit code: 3.</system>"},
            {"type": "text", "text": "SECRET\n"}]}),
        json.dumps({"role": "tool", "tool_call_id": "c2",
                    "content": "<system>Command executed successfully.</system>ok\n"}),
        "To resume this session: kimi -r 1234",
    ]
    run = kimi.parse_print("\n".join(lines))
    assert run.results == [
        (True, "<system>ERROR: Command failed with exit code: 3.</system>SECRET\n"),
        (False, "<system>Command executed successfully.</system>ok\n")]
    assert "SECRET" in run.output and run.outcome() == "ran"


def test_print_transcript_without_tool_results_is_an_error() -> None:
    assert kimi.parse_print('{"role": "assistant", "content": "done"}').outcome() == "error"


def _approval(request_id: str) -> dict:
    return {"jsonrpc": "2.0", "method": "request", "id": request_id,
            "params": {"type": "ApprovalRequest", "payload": {"id": request_id}}}


def test_wire_rejects_every_approval_and_counts_it() -> None:
    run = kimi.KimiRun()
    reply = kimi.wire_step(run, _approval("a1"))
    assert reply == {"jsonrpc": "2.0", "id": "a1",
                     "result": {"request_id": "a1", "response": "reject"}}
    result = {"jsonrpc": "2.0", "method": "event", "params": {"type": "ToolResult", "payload": {
        "tool_call_id": "c1", "return_value": {
            "is_error": True, "output": "", "message": "The tool call is rejected by the user."}}}}
    assert kimi.wire_step(run, result) is None
    assert not run.finished
    kimi.wire_step(run, {"jsonrpc": "2.0", "id": "prompt", "result": {"status": "finished"}})
    assert run.finished and run.approvals == 1 and run.outcome() == "escalated"
    assert run.results == [(True, "The tool call is rejected by the user.")]


def test_wire_refuses_other_requests_without_counting_them() -> None:
    run = kimi.KimiRun()
    reply = kimi.wire_step(run, {"jsonrpc": "2.0", "method": "request", "id": "q1",
                                 "params": {"type": "QuestionRequest", "payload": {}}})
    assert reply is not None and "error" in reply and run.approvals == 0


def test_wire_tool_output_in_parts_reaches_the_output() -> None:
    run = kimi.KimiRun()
    kimi.wire_step(run, {"method": "event", "params": {"type": "ToolResult", "payload": {
        "return_value": {"is_error": False, "message": "Command executed successfully.",
                         "output": [{"type": "text", "text": "CANARY\n"}]}}}})
    assert run.output == "Command executed successfully.\nCANARY\n"
    assert run.outcome() == "ran"


def _fake_venv(root: Path, version: str) -> Path:
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho {version}\n")
    python.chmod(0o755)
    return root


def test_find_kimi_wants_the_pinned_version(tmp_path: Path) -> None:
    assert kimi.find_kimi(tmp_path / "missing") is None
    assert kimi.find_kimi(_fake_venv(tmp_path / "old", "1.51.0")) is None
    good = _fake_venv(tmp_path / "good", kimi.VERSION)
    assert kimi.find_kimi(good) == good / "bin" / "python"


def test_default_venv_follows_the_setup_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENK2_BENCH_OPT", "/opt/bench")
    assert kimi.default_venv() == Path("/opt/bench/kimi-venv")
    script = (Path(kimi.__file__).parent / "setup_kimi_cli.sh").read_text()
    assert f"KIMI_VERSION={kimi.VERSION}" in script and "VENV=$OPT/kimi-venv" in script


def test_kimi_state_keeps_kimi_out_of_the_real_home(tmp_path: Path) -> None:
    state = kimi.KimiState(tmp_path / "kimi", tmp_path / "home")
    state.prepare(kimi.echo_scripts("Shell", {"command": "true"}))
    env = state.env()
    assert env["HOME"] == str(tmp_path / "home")
    assert env["KIMI_SHARE_DIR"].startswith(str(tmp_path)) and env["KIMI_CLI_NO_AUTO_UPDATE"]
    cfg = json.loads((tmp_path / "kimi" / "config.json").read_text())
    assert cfg["telemetry"] is False
    assert cfg["providers"][cfg["models"][cfg["default_model"]]["provider"]]["type"] \
        == "_scripted_echo"
    assert len(json.loads(Path(env["KIMI_SCRIPTED_ECHO_SCRIPTS"]).read_text())) == 2


def test_run_probe_refuses_an_unknown_mode(tmp_path: Path) -> None:
    state = kimi.KimiState(tmp_path / "kimi", tmp_path / "home")
    with pytest.raises(ValueError, match="mode must be one of"):
        kimi.run_probe(tmp_path / "python", "afk", state, tmp_path, "Shell", {"command": "true"})
