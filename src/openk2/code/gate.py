"""The seam between the tools and the safety layers: every call is reviewed before it runs.

A code tool describes what a call would do as an `Action` (read or write these resolved
paths, run this shell command, or only change session state). A `ToolGate` answers
allow / ask / deny; an `Approver` settles "ask" (headless runs deny it, the interactive UI
asks the user). `GatedToolset` applies the verdict inside dispatch, so no path around the
gate exists: a denied call never reaches the tool and the model is told why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

from openk2.agent.guard.untrusted import Source, mark_untrusted
from openk2.agent.llm.message import ToolCall
from openk2.agent.tools.base import (
    ModelRetry,
    ToolError,
    ToolOk,
    ToolResult,
    Toolset,
    _parse_params,
)
from openk2.code.repeat import RepeatGuard

ActionKind: TypeAlias = Literal["read", "write", "exec", "state", "tool"]
Decision: TypeAlias = Literal["allow", "ask", "deny"]


@dataclass(frozen=True, slots=True)
class Action:
    """What one tool call would do, in terms the policy understands."""

    tool: str
    """The tool's name (ReadFile, Shell, ...)."""
    kind: ActionKind
    """read / write files, exec a shell command, state (todo list: harmless), or another tool."""
    summary: str
    """One line for prompts and logs, e.g. `edit file src/app.py`."""
    paths: tuple[Path, ...] = ()
    """Resolved (real) paths the call reads or writes."""
    command: str | None = None
    """The shell command, for `exec`."""
    arguments: Mapping[str, Any] | None = None
    """The call's arguments, for `tool` (MCP tools: hooks and the audit log see them)."""
    read_only: bool = False
    """For `tool`: the tool says it changes nothing (MCP `readOnlyHint`)."""
    replaces: bool = False
    """For `write`: the call replaces whole files (WriteFile overwrite), not edits them."""
    output: Source | None = None
    """Where the result's text comes from when the harness cannot vouch for it (file, shell,
    web, mcp, subagent): `GatedToolset` marks it as untrusted data before the model sees it."""
    origin: str = ""
    """What that data is (a path, a command, a URL), named in the untrusted-data notice."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer for one action."""

    decision: Decision
    reason: str = ""
    """Why, in words the model can act on."""
    rule: str | None = None
    """The rule that decided, for the audit log."""
    message: str | None = None
    """What the model is told when denied (default: built from `reason`)."""


@dataclass(frozen=True, slots=True)
class Undone:
    """What `ToolGate.after` returns when it took back a call's effects after it ran (work a
    script deleted, put back): the note for the model and the verdict that counts as a denial."""

    note: str
    verdict: Verdict


class ToolGate(Protocol):
    """Decides whether an action may run, and sees the final decision before it runs."""

    async def review(self, action: Action) -> Verdict:
        """allow / ask / deny for `action` (policy rules, then hooks)."""
        ...

    async def settled(self, action: Action, verdict: Verdict) -> None:
        """The final decision, after any approval: audit it; snapshot before a change runs."""
        ...

    async def after(self, action: Action, tool_input: dict[str, Any], output: str
                    ) -> str | Undone | None:
        """After the call ran (what it did, PostToolUse hooks): a note for the model, if any;
        `Undone` when its effects were taken back (the call then counts as denied)."""
        ...

    async def stop(self) -> str | None:
        """The agent wants to stop (Stop hooks): a reason to go on instead, if any."""
        ...


class Approver(Protocol):
    """Settles an "ask" verdict: a user prompt, or a headless refusal."""

    async def approve(self, action: Action, verdict: Verdict) -> bool:
        """True to run the action."""
        ...


class DenyAsks:
    """The headless approver: nobody can answer, so whatever would ask is denied."""

    async def approve(self, action: Action, verdict: Verdict) -> bool:
        """Always False."""
        return False


class GatedTool(Protocol):
    """A tool that can say what a call would do before doing it."""

    def action(self, params: Any) -> Action:
        """The action of a validated call."""
        ...


@dataclass(frozen=True, slots=True)
class Denial:
    """A call the gate (or the approver) refused."""

    call: ToolCall
    action: Action
    verdict: Verdict


VerdictHook: TypeAlias = Callable[[ToolCall, Action, Verdict], None]


class GatedToolset(Toolset):
    """A toolset whose dispatch asks the gate first; refused calls become `ToolError`s."""

    def __init__(
        self, tools: Any, gate: ToolGate, approver: Approver, on_verdict: VerdictHook | None = None
    ) -> None:
        super().__init__(tools)
        self.gate = gate
        self.approver = approver
        self.on_verdict = on_verdict
        self.denials: list[Denial] = []
        self.repeats = RepeatGuard()

    async def dispatch(self, call: ToolCall) -> ToolResult:
        """Validate, review, then run; unknown tools and bad JSON are reported as usual."""
        count = self.repeats.see(call)
        if self.repeats.refuse(count):
            made = self.repeats.refuse_at - 1
            return ToolError(f"not run: this exact call was already made {made} or more times "
                             "in a row. Do something different.", brief="repeated")
        result = await self._dispatch(call)
        note = self.repeats.reminder(count)
        return _with_note(result, note) if note else result

    async def _dispatch(self, call: ToolCall) -> ToolResult:
        if call.name not in self:
            return await super().dispatch(call)
        tool = self.get(call.name)
        params = _parse_params(tool, call.arguments)
        if isinstance(params, ToolError):
            return params
        return await self.run_gated(call, tool, params)

    async def run_gated(self, call: ToolCall, tool: Any, params: Any) -> ToolResult:
        """Review a validated call, settle any ask, and run it only if allowed (also used by
        tools that hand this toolset's tools to other runtimes, such as the swarm)."""
        action = tool.action(params)
        verdict = await self._settle(action, await self.gate.review(action))
        await self.gate.settled(action, verdict)
        if self.on_verdict is not None:
            self.on_verdict(call, action, verdict)
        if verdict.decision != "allow":
            self.denials.append(Denial(call, action, verdict))
            return denied_error(action, verdict)
        try:
            result = await tool.run(params)
        except ModelRetry as exc:
            return ToolError(str(exc), brief="retry")
        except OSError as exc:  # the file system said no (permissions, a full disk, ...)
            return ToolError(f"{action.summary} failed: {exc}", brief="os error")
        note = await self.gate.after(action, params.model_dump(), result.output)
        result = as_data(result, action)
        if isinstance(note, Undone):
            self.denials.append(Denial(call, action, note.verdict))
            if self.on_verdict is not None:
                self.on_verdict(call, action, note.verdict)
            note = note.note
        return _with_note(result, note) if note else result

    async def _settle(self, action: Action, verdict: Verdict) -> Verdict:
        if verdict.decision != "ask":
            return verdict
        if await self.approver.approve(action, verdict):
            return Verdict("allow", f"approved: {verdict.reason}", verdict.rule)
        return Verdict("deny", f"needs approval and was not approved ({verdict.reason})",
                       verdict.rule)


def as_data(result: ToolResult, action: Action) -> ToolResult:
    """The one place tool output is marked untrusted (layer 6): text from files, commands,
    the web, MCP servers and sub-agents reaches the model as data inside nonce-tagged
    markers. Harness notes (hooks, the repeat guard, restored work) are added after, outside
    the markers. Nothing in the guard reads this text, so it cannot change a rule or add an
    approval whatever it says."""
    if action.output is None:
        return result
    origin = " ".join(action.origin.split())[:160]
    if isinstance(result, ToolError):
        return ToolError(mark_untrusted(result.message, source=action.output, origin=origin),
                         result.brief)
    return ToolOk(mark_untrusted(result.output, source=action.output, origin=origin),
                  result.brief)


def _with_note(result: ToolResult, note: str) -> ToolResult:
    """`result` with `note` appended to what the model sees."""
    text = f"{result.output}\n{note}"
    if isinstance(result, ToolError):
        return ToolError(text.removeprefix("ERROR: "), result.brief)
    return ToolOk(text, result.brief)


def denied_error(action: Action, verdict: Verdict) -> ToolError:
    """What the model sees for a refused call: what, why, and not to work around it."""
    if verdict.message:
        return ToolError(f"{action.summary}: {verdict.message}", brief="denied")
    return ToolError(
        f"{action.summary}: denied by the safety policy: {verdict.reason}. Nothing was run. "
        "Do not try to reach the same effect another way; choose a different approach or "
        "tell the user what you need.",
        brief="denied",
    )
