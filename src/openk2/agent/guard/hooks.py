"""User hooks (PreToolUse / PostToolUse / Stop, ...) that fail closed.

Claude-compatible protocol: the hook command runs through `/bin/sh -c` with a JSON object on
stdin (`session_id`, `cwd`, `hook_event_name`, `tool_name`, `tool_input`, `tool_response`);
exit 0 with optional JSON on stdout (`{"decision": "block", "reason": ...}` or
`{"hookSpecificOutput": {"permissionDecision": "allow|ask|deny", ...}}`), exit 2 blocks with
stderr as the reason. Unlike Claude Code and kimi-cli, **anything else is a deny**: another
non-zero exit, a crash, unparseable JSON, or running past the timeout. A hook can only make a
call stricter; its "allow" means "no objection" and never lifts a policy ask or deny.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from openk2.agent.guard.rules import STRICTNESS, Verdict

HookEvent: TypeAlias = Literal[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "UserPromptSubmit",
    "Stop",
    "SessionStart",
    "SessionEnd",
    "SubagentStop",
    "PreCompact",
    "Notification",
]
HOOK_EVENTS: frozenset[str] = frozenset(HookEvent.__args__)  # type: ignore[attr-defined]
DEFAULT_TIMEOUT_S = 30.0
BLOCK_EXIT = 2


class HookConfigError(ValueError):
    """A `[[hooks]]` entry is malformed."""


@dataclass(frozen=True, slots=True)
class HookSpec:
    """One configured hook: which event, which tools (regex on the name), what to run."""

    event: str
    command: str
    matcher: str = ""
    """Regex matched against the whole tool name; empty or `*` = every tool."""
    timeout_s: float = DEFAULT_TIMEOUT_S

    def applies(self, event: str, tool_name: str | None) -> bool:
        if event != self.event:
            return False
        if not self.matcher or self.matcher == "*" or tool_name is None:
            return True
        return re.fullmatch(self.matcher, tool_name) is not None


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """The combined answer of the hooks for one event."""

    verdict: Verdict = "allow"
    reason: str = ""
    hook: str | None = None
    """The command of the hook that decided (None when no hook objected)."""
    context: tuple[str, ...] = field(default=())
    """`additionalContext` strings the hooks want the model to see."""


def load_hooks(entries: Iterable[Mapping[str, Any]]) -> tuple[HookSpec, ...]:
    """Hooks from configuration: `event`, `command`, optional `matcher`, `timeout` (seconds)."""
    specs: list[HookSpec] = []
    for entry in entries:
        event, command = entry.get("event"), entry.get("command")
        if event not in HOOK_EVENTS:
            raise HookConfigError(f"hook event must be one of {sorted(HOOK_EVENTS)}, not {event!r}")
        if not isinstance(command, str) or not command.strip():
            raise HookConfigError(f"{event} hook needs a non-empty `command`")
        timeout = float(entry.get("timeout", DEFAULT_TIMEOUT_S))
        if not 0 < timeout <= 600:
            raise HookConfigError(f"hook timeout must be in (0, 600] seconds, not {timeout}")
        matcher = str(entry.get("matcher", ""))
        try:
            re.compile(matcher)
        except re.error as exc:
            raise HookConfigError(f"hook matcher {matcher!r} is not a valid regex: {exc}") from exc
        specs.append(HookSpec(event, command, matcher, timeout))
    return tuple(specs)


class HookRunner:
    """Runs the hooks of a session; every failure mode is a deny."""

    def __init__(self, hooks: Sequence[HookSpec], *, cwd: Path, session_id: str = "") -> None:
        self.hooks = tuple(hooks)
        self.cwd = cwd
        self.session_id = session_id

    async def run(
        self, event: str, *, tool_name: str | None = None, payload: Mapping[str, Any] | None = None
    ) -> HookOutcome:
        """Run every hook for `event` (and tool) in order; the first deny stops the rest."""
        body = {
            "session_id": self.session_id,
            "cwd": str(self.cwd),
            "hook_event_name": event,
            **({"tool_name": tool_name} if tool_name else {}),
            **(payload or {}),
        }
        context: list[str] = []
        worst = HookOutcome()
        for hook in self.hooks:
            if not hook.applies(event, tool_name):
                continue
            outcome = await run_hook(hook, body, self.cwd)
            context += outcome.context
            if STRICTNESS[outcome.verdict] > STRICTNESS[worst.verdict]:
                worst = outcome
            if worst.verdict == "deny":
                break
        return HookOutcome(worst.verdict, worst.reason, worst.hook, tuple(context))


async def run_hook(hook: HookSpec, body: Mapping[str, Any], cwd: Path) -> HookOutcome:
    """Run one hook with `body` as JSON on stdin and turn its result into an outcome."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            hook.command,
            cwd=cwd,
            start_new_session=True,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return _deny(hook, f"hook could not start: {exc}")
    data = json.dumps(body, default=str).encode()
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), hook.timeout_s)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return _deny(hook, f"hook timed out after {hook.timeout_s:g} s")
    return _interpret(
        hook, proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _deny(hook: HookSpec, reason: str) -> HookOutcome:
    return HookOutcome("deny", reason, hook.command)


def _interpret(hook: HookSpec, code: int, stdout: str, stderr: str) -> HookOutcome:
    if code == BLOCK_EXIT:
        return _deny(hook, stderr.strip() or "blocked by hook (exit 2)")
    if code != 0:
        return _deny(hook, f"hook failed with exit status {code}: {stderr.strip()[:500]}")
    text = stdout.strip()
    if not text.startswith("{"):
        return HookOutcome("allow", "", None, (text,) if text else ())
    try:
        reply = json.loads(text)
    except ValueError as exc:
        return _deny(hook, f"hook printed invalid JSON: {exc}")
    if not isinstance(reply, dict):
        return _deny(hook, "hook JSON must be an object")
    return _from_json(hook, reply)


def _from_json(hook: HookSpec, reply: Mapping[str, Any]) -> HookOutcome:
    specific = reply.get("hookSpecificOutput")
    specific = specific if isinstance(specific, dict) else {}
    context = tuple(str(c) for c in (specific.get("additionalContext"),) if c)
    permission = specific.get("permissionDecision")
    reason = str(specific.get("permissionDecisionReason") or reply.get("reason") or "")
    if reply.get("continue") is False:
        return HookOutcome(
            "deny", str(reply.get("stopReason") or reason or "hook stopped"), hook.command, context
        )
    if reply.get("decision") in ("block", "deny") or permission == "deny":
        return HookOutcome("deny", reason or "blocked by hook", hook.command, context)
    if permission == "ask" or reply.get("decision") == "ask":
        return HookOutcome("ask", reason or "hook asks for approval", hook.command, context)
    if permission not in (None, "allow") or reply.get("decision") not in (None, "approve", "allow"):
        return _deny(hook, f"hook gave an unknown decision: {reply!r:.200}")
    return HookOutcome("allow", reason, None, context)
