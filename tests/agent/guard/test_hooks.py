"""Hooks fail closed: error, non-zero exit, bad JSON or timeout is a deny."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from openk2.agent.guard import HookConfigError, HookRunner, HookSpec, load_hooks


def runner(tmp_path: Path, command: str, **kw: object) -> HookRunner:
    spec = HookSpec(event="PreToolUse", command=command, **kw)  # type: ignore[arg-type]
    return HookRunner([spec], cwd=tmp_path, session_id="s1")


async def pre(r: HookRunner, tool: str = "Shell") -> str:
    outcome = await r.run("PreToolUse", tool_name=tool, payload={"tool_input": {"command": "ls"}})
    return outcome.verdict


async def test_stdin_is_claude_json(tmp_path: Path) -> None:
    out = tmp_path / "stdin.json"
    assert await pre(runner(tmp_path, f"cat > {out}")) == "allow"
    body = json.loads(out.read_text())
    assert body["hook_event_name"] == "PreToolUse" and body["tool_name"] == "Shell"
    assert body["tool_input"] == {"command": "ls"} and body["session_id"] == "s1"
    assert body["cwd"] == str(tmp_path)


@pytest.mark.parametrize(
    "command, verdict",
    [
        ("exit 0", "allow"),
        ("echo 'note for the model'", "allow"),
        ("echo blocked >&2; exit 2", "deny"),
        ("exit 1", "deny"),  # Claude Code lets this through; we do not
        ("exit 3", "deny"),
        ("openk2-no-such-hook-command", "deny"),
        ("echo '{not json'", "deny"),
        ("echo '[1]'", "allow"),
        ("""echo '{"decision": "block", "reason": "no"}'""", "deny"),
        ("""echo '{"hookSpecificOutput": {"permissionDecision": "deny"}}'""", "deny"),
        ("""echo '{"hookSpecificOutput": {"permissionDecision": "ask"}}'""", "ask"),
        ("""echo '{"hookSpecificOutput": {"permissionDecision": "allow"}}'""", "allow"),
        ("""echo '{"hookSpecificOutput": {"permissionDecision": "maybe"}}'""", "deny"),
        ("""echo '{"continue": false, "stopReason": "halt"}'""", "deny"),
    ],
)
async def test_exit_codes_and_json(tmp_path: Path, command: str, verdict: str) -> None:
    assert await pre(runner(tmp_path, command)) == verdict


async def test_exit_2_reason_is_stderr(tmp_path: Path) -> None:
    outcome = await runner(tmp_path, "echo 'no pushes' >&2; exit 2").run(
        "PreToolUse", tool_name="Shell"
    )
    assert outcome.verdict == "deny" and outcome.reason == "no pushes"


async def test_timeout_denies_and_kills(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    r = runner(tmp_path, f"sleep 3; touch {marker}", timeout_s=0.3)
    start = time.monotonic()
    outcome = await r.run("PreToolUse", tool_name="Shell")
    assert outcome.verdict == "deny" and "timed out" in outcome.reason
    assert time.monotonic() - start < 2.5
    await asyncio.sleep(0.1)
    assert not marker.exists()


async def test_matcher_selects_tools(tmp_path: Path) -> None:
    r = runner(tmp_path, "exit 2", matcher="Shell|WriteFile")
    assert await pre(r, "Shell") == "deny"
    assert await pre(r, "ReadFile") == "allow"
    assert (await r.run("PostToolUse", tool_name="Shell")).verdict == "allow"


async def test_first_deny_stops_the_rest(tmp_path: Path) -> None:
    marker = tmp_path / "second-ran"
    hooks = [HookSpec("Stop", "exit 2"), HookSpec("Stop", f"touch {marker}")]
    outcome = await HookRunner(hooks, cwd=tmp_path).run("Stop")
    assert outcome.verdict == "deny" and not marker.exists()


def test_load_hooks_validates() -> None:
    specs = load_hooks(
        [{"event": "PreToolUse", "matcher": "Shell", "command": "true", "timeout": 5}]
    )
    assert specs[0].timeout_s == 5
    for bad in (
        {"event": "Nope", "command": "true"},
        {"event": "Stop", "command": ""},
        {"event": "Stop", "command": "true", "timeout": 0},
        {"event": "Stop", "command": "true", "matcher": "("},
    ):
        with pytest.raises(HookConfigError):
            load_hooks([bad])
