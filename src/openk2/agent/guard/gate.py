"""The gate every tool call passes: policy -> PreToolUse hooks -> approval -> audit.

Tools call one of `shell`, `path` or `tool` before acting and get a `GateResult`; when it is
not `allowed` they return `result.message` to the model as the tool's error. Who answers an
"ask" is the `asker`:
- an interactive UI passes a coroutine that shows the request and returns an `Answer`;
- headless runs pass None: every ask is denied, the model is told why, and `gate.denied`
  records it so the run can exit non-zero;
- tests of manual mode pass `reject_all`.
Approving a prefix stores it (shown to the user via `GateResult.notice`) only when the policy
offered prefixes; always-ask commands can be approved once, never persisted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from openk2.agent.guard.approvals import ApprovalError, ApprovalStore, describe
from openk2.agent.guard.audit import AuditLog
from openk2.agent.guard.hooks import HookOutcome, HookRunner
from openk2.agent.guard.policy import Decision, Policy
from openk2.agent.guard.rules import Access
from openk2.agent.guard.work import DESTROYS_WORK


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What the UI shows: the tool, a one-line summary, and the decision that asked."""

    tool: str
    summary: str
    decision: Decision

    @property
    def prefixes(self) -> tuple[tuple[str, ...], ...]:
        """Prefixes the user may approve for this project (empty: approve once only)."""
        return self.decision.prefixes


@dataclass(frozen=True, slots=True)
class Answer:
    """The user's reply: approve once, approve the offered prefixes, or reject (+ feedback)."""

    choice: Literal["approve", "approve_prefix", "reject"]
    feedback: str = ""


Asker: TypeAlias = Callable[[ApprovalRequest], Awaitable[Answer]]


async def reject_all(request: ApprovalRequest) -> Answer:
    """An asker that rejects everything: manual mode in tests."""
    return Answer("reject", "rejected automatically (test mode)")


@dataclass(frozen=True, slots=True)
class GateResult:
    """The final verdict on one call, the message for the model, and a notice for the user."""

    allowed: bool
    decision: Decision
    message: str = ""
    notice: str = ""
    hook_context: tuple[str, ...] = ()


@dataclass(slots=True)
class Gate:
    """Policy, hooks, approvals and the audit log of one session."""

    policy: Policy
    asker: Asker | None = None
    hooks: HookRunner | None = None
    audit: AuditLog | None = None
    session: str = ""
    """Session id written on every audit record (empty: not recorded)."""
    denied: list[Decision] = field(default_factory=list)
    """Every call denied this session (headless runs exit non-zero when it is not empty)."""

    @property
    def headless(self) -> bool:
        return self.asker is None

    async def shell(
        self, command: str, *, cwd: Path | None = None, tool: str = "Shell"
    ) -> GateResult:
        decision = self.policy.check_shell(command, cwd)
        return await self._authorize(tool, {"command": command}, command, decision)

    async def path(
        self,
        path: str | Path,
        access: Access,
        *,
        tool: str,
        tool_input: Mapping[str, Any] | None = None,
        replaces: bool = False,
    ) -> GateResult:
        decision = self.policy.check_path(path, access, replaces=replaces)
        summary = f"{access} {path}"
        return await self._authorize(tool, tool_input or {"path": str(path)}, summary, decision)

    async def tool(
        self, name: str, tool_input: Mapping[str, Any], *, read_only: bool
    ) -> GateResult:
        decision = self.policy.check_tool(name, read_only=read_only)
        return await self._authorize(name, tool_input, name, decision)

    async def confirm_loss(self, tool: str, command: str, lost: Sequence[Path]) -> GateResult:
        """After a command ran: it threw away work it never named (a script, a build step).

        The same `destroys-work` rule, applied to what happened: the user is asked whether to
        keep the loss (headless: denied, so the run exits non-zero); on a deny the caller
        puts the files back from the snapshot taken before the command."""
        shown = ", ".join(str(p) for p in lost[:5])
        shown += f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        reason = f"the command deleted or emptied {shown}, which held work git cannot give back"
        decision = Decision("ask", DESTROYS_WORK.name, reason, command)
        summary = f"keep what `{command}` threw away ({shown})?"
        return await self._ask(tool, summary, decision, ())

    async def post_tool(
        self, tool: str, tool_input: Mapping[str, Any], response: Any
    ) -> HookOutcome:
        """PostToolUse hooks; a deny here should be shown to the model as feedback."""
        outcome = await self._hook(
            "PostToolUse", tool, {"tool_input": dict(tool_input), "tool_response": response}
        )
        self._log("post_tool", tool=tool, verdict=outcome.verdict, reason=outcome.reason)
        return outcome

    async def stop(self, payload: Mapping[str, Any] | None = None) -> HookOutcome:
        """Stop hooks; a deny means "do not stop yet" and its reason goes to the model."""
        outcome = await self._hook("Stop", None, dict(payload or {}))
        self._log("stop", verdict=outcome.verdict, reason=outcome.reason)
        return outcome

    # ---- the pipeline --------------------------------------------------------------------

    async def _authorize(
        self, tool: str, tool_input: Mapping[str, Any], summary: str, decision: Decision
    ) -> GateResult:
        if decision.verdict == "deny":
            return self._finish(tool, summary, decision, False, "policy")
        hook = await self._hook("PreToolUse", tool, {"tool_input": dict(tool_input)})
        if hook.verdict == "deny":
            hooked = Decision("deny", f"hook:{hook.hook}", hook.reason, decision.command)
            return self._finish(tool, summary, hooked, False, "hook", hook.context)
        if hook.verdict == "ask" and decision.verdict == "allow":
            decision = Decision("ask", f"hook:{hook.hook}", hook.reason, decision.command)
        if decision.verdict == "allow":
            return self._finish(tool, summary, decision, True, "policy", hook.context)
        return await self._ask(tool, summary, decision, hook.context)

    async def _ask(
        self, tool: str, summary: str, decision: Decision, context: tuple[str, ...]
    ) -> GateResult:
        if self.asker is None:
            return self._finish(tool, summary, decision, False, "headless", context)
        answer = await self.asker(ApprovalRequest(tool, summary, decision))
        if answer.choice == "reject":
            return self._finish(tool, summary, decision, False, "user", context, answer.feedback)
        notice = ""
        if answer.choice == "approve_prefix":
            notice = self._persist(decision)
        self._finish(tool, summary, decision, True, "user", context)
        return GateResult(True, decision, "", notice, context)

    def _persist(self, decision: Decision) -> str:
        """Store the offered prefixes; the returned sentence is shown to the user."""
        store: ApprovalStore | None = self.policy.approvals
        if store is None or not decision.prefixes:
            return f"approved once: {decision.rule} cannot be approved for later calls"
        sentences = []
        for prefix in decision.prefixes:
            try:
                sentences.append(store.add(prefix))
            except ApprovalError as exc:
                sentences.append(f"approved once; not stored: {exc}")
                continue
            self._log("approval_added", prefix=list(prefix), shown=describe(prefix))
        return "; ".join(sentences)

    def _finish(
        self,
        tool: str,
        summary: str,
        decision: Decision,
        allowed: bool,
        by: str,
        context: tuple[str, ...] = (),
        feedback: str = "",
    ) -> GateResult:
        self._log(
            "decision",
            tool=tool,
            call=summary,
            verdict=decision.verdict,
            rule=decision.rule,
            reason=decision.reason,
            allowed=allowed,
            decided_by=by,
            mode=self.policy.mode,
            **({"feedback": feedback} if feedback else {}),
        )
        if allowed:
            return GateResult(True, decision, "", "", context)
        self.denied.append(decision)
        return GateResult(False, decision, _message(decision, by, feedback), "", context)

    async def _hook(self, event: str, tool: str | None, payload: dict[str, Any]) -> HookOutcome:
        if self.hooks is None:
            return HookOutcome()
        return await self.hooks.run(event, tool_name=tool, payload=payload)

    def _log(self, event: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.record(
                event, **({"session": self.session} if self.session else {}), **fields
            )


def _message(decision: Decision, by: str, feedback: str) -> str:
    """What the model is told, so it can change course instead of retrying."""
    why = f"{decision.reason} [{decision.rule}]"
    if by == "headless":
        return (
            f"Not run: this call needs the user's approval ({why}), and this run is headless, so "
            "it was denied. Find another way that needs no approval, or finish and report it."
        )
    if by == "user":
        extra = f" The user said: {feedback}" if feedback else ""
        return f"Not run: the user rejected this call ({why}).{extra}"
    if by == "hook":
        return f"Not run: a PreToolUse hook blocked it: {decision.reason}"
    return f"Not run: denied by policy ({why}). This holds in every mode; do not work around it."
