"""The safety layers of a coding session, from `openk2.agent.guard`, behind the code seam.

`GuardGate` adapts the guard's `Gate` (policy, fail-closed hooks, approvals, audit) to the
`ToolGate` that `GatedToolset` calls before every tool call, and snapshots the workspace into
the guard's shadow-git store before each allowed edit or shell command (for `/undo`). Shell
commands run through the guard's bubblewrap sandbox; if it cannot start the session refuses
to begin rather than run unconfined, and only `--no-sandbox` (loudly) runs commands bare.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openk2.agent.guard import (
    DESTROYS_WORK,
    ApprovalStore,
    Asker,
    AuditLog,
    Gate,
    GateResult,
    HookConfigError,
    HookRunner,
    Policy,
    RuleError,
    SandboxConfig,
    SandboxUnavailable,
    SnapshotStore,
    UserWork,
    audit_path,
    load_hooks,
    load_rules,
    lost_since,
    open_sandbox,
)
from openk2.agent.guard.snapshots import SnapshotError
from openk2.code.build import Safety
from openk2.code.config import CodeSettings, ConfigError
from openk2.code.gate import Action, DenyAsks, Undone, Verdict
from openk2.code.workspace import Workspace


class GuardGate:
    """`ToolGate` over the guard's `Gate`; asks are settled inside it (by its asker)."""

    def __init__(self, gate: Gate, workspace: Workspace,
                 snapshots: SnapshotStore | None = None) -> None:
        self.gate = gate
        self.workspace = workspace
        self.snapshots = snapshots
        self.snapshot_ids: list[str] = []
        self._before: dict[int, tuple[Action, str]] = {}
        """Shell action (by identity; kept alive so its id stays unique) -> the snapshot taken
        before it, for `_lost_work`."""
        self.on_snapshot: Callable[[str], None] | None = None
        """Told each new snapshot id (the session logs it, for `--rewind`)."""

    async def review(self, action: Action) -> Verdict:
        """The guard's final verdict: shell line, every resolved path, or harmless state."""
        if action.kind == "state":
            return Verdict("allow", "changes only the session's own state", "tool:state")
        if action.kind == "tool":
            args = dict(action.arguments or {})
            return _verdict(await self.gate.tool(action.tool, args, read_only=action.read_only))
        if action.kind == "exec":
            assert action.command is not None
            result = await self.gate.shell(action.command, cwd=self.workspace.root,
                                           tool=action.tool)
            return _verdict(result)
        return await self._paths(action)

    async def _paths(self, action: Action) -> Verdict:
        access = "write" if action.kind == "write" else "read"
        result: GateResult | None = None
        for path in action.paths:
            result = await self.gate.path(path, access, tool=action.tool,
                                          replaces=action.replaces)
            if not result.allowed:
                break
        assert result is not None, f"{action.tool} named no path"
        return _verdict(result)

    async def settled(self, action: Action, verdict: Verdict) -> None:
        """Snapshot the work tree before an allowed change runs."""
        if self.snapshots is None or verdict.decision != "allow":
            return
        if action.kind not in ("write", "exec"):
            return
        label = f"before {action.summary}"[:120]
        snap = await asyncio.to_thread(self.snapshots.snapshot, label)
        self.snapshot_ids.append(snap)
        if action.kind == "exec" and verdict.rule != DESTROYS_WORK.name:
            self._before[id(action)] = (action, snap)  # an approved destroys-work ask: consent
        if self.on_snapshot is not None:
            self.on_snapshot(snap)

    async def after(self, action: Action, tool_input: dict[str, Any], output: str
                    ) -> str | Undone | None:
        """Notes for the model after a call ran: work a shell command threw away unnamed (put
        back: `Undone`, a denial), then what PostToolUse hooks objected."""
        lost = await self._lost_work(action)
        hooks = await self._post_hooks(action, tool_input, output)
        if isinstance(lost, Undone):
            return Undone("\n".join(n for n in (lost.note, hooks) if n), lost.verdict)
        return "\n".join(n for n in (lost, hooks) if n) or None

    async def _post_hooks(self, action: Action, tool_input: dict[str, Any], output: str
                          ) -> str | None:
        if self.gate.hooks is None:
            return None
        outcome = await self.gate.post_tool(action.tool, tool_input, output)
        said = [*outcome.context, outcome.reason if outcome.verdict != "allow" else ""]
        text = "\n".join(n for n in said if n)
        return f"[PostToolUse hook] {text}" if text else None

    async def _lost_work(self, action: Action) -> str | Undone | None:
        """`destroys-work` on what a command did: work it deleted or emptied is put back from
        the snapshot taken before it, unless the user (never a headless run) keeps the loss."""
        entry = self._before.pop(id(action), None)
        snap = entry[1] if entry is not None and entry[0] is action else None
        work = self.gate.policy.work
        if snap is None or self.snapshots is None or work is None or action.command is None:
            return None
        store = self.snapshots
        lost = await asyncio.to_thread(lost_since, store, snap, work)
        if not lost:
            return None
        result = await self.gate.confirm_loss(action.tool, action.command, lost)
        shown = ", ".join(self.workspace.display(p) for p in lost)
        if result.allowed:
            return f"[harness] the user kept the deletion of {shown}."
        await asyncio.to_thread(store.restore_paths, snap, lost)
        d = result.decision
        note = (f"[harness] this command deleted or emptied {shown}, which held work git "
                "cannot give back; the harness put them back from the snapshot taken before "
                f"it ({d.rule}). Do not delete them another way; ask the user.")
        return Undone(note, Verdict("deny", d.reason, d.rule, message=note))

    async def stop(self) -> str | None:
        """Stop hooks: a deny means "not done yet", with the reason for the model."""
        if self.gate.hooks is None:
            return None
        outcome = await self.gate.stop({"cwd": str(self.workspace.root)})
        return (outcome.reason or "a Stop hook asked to continue") if outcome.verdict == "deny" \
            else None


def _verdict(result: GateResult) -> Verdict:
    d = result.decision
    if result.allowed:
        return Verdict("allow", d.reason, d.rule)
    return Verdict("deny", d.reason, d.rule, message=result.message)


class SandboxLauncher:
    """`ShellLauncher` over the guard's sandbox (or its `Unsandboxed` for `--no-sandbox`)."""

    def __init__(self, sandbox: object) -> None:
        self.sandbox = sandbox

    @property
    def sandboxed(self) -> bool:
        """Whether bubblewrap confines the commands."""
        return bool(getattr(self.sandbox, "enabled", False))

    def argv(self, command: str, cwd: Path) -> list[str]:
        """`bash -c COMMAND`, wrapped by the sandbox."""
        return self.sandbox.wrap(["bash", "-c", command])  # type: ignore[attr-defined]

    def env(self) -> dict[str, str]:
        """The sandbox's scrubbed environment."""
        return self.sandbox.env()  # type: ignore[attr-defined]

    @property
    def banner(self) -> str | None:
        """The warning to print at every start of an unsandboxed session."""
        return getattr(self.sandbox, "banner", None)

    def close(self) -> None:
        """Stop the sandbox's network proxy, if one runs."""
        self.sandbox.close()  # type: ignore[attr-defined]


def build_safety(
    settings: CodeSettings, workspace: Workspace, *, sandbox: bool = True,
    asker: Asker | None = None, readable: Sequence[Path] = (), snapshots: bool = True,
    throwaway: bool = False,
) -> Safety:
    """Policy in `settings.mode`, approvals, audit log, sandbox and snapshots for a session.

    `asker=None` is headless: every call that would ask is denied and the model is told.
    `throwaway`: the workspace is a scratch copy (a bench task), so nothing in it is the
    user's work and `destroys-work` has nothing to protect.
    """
    ws = workspace.root
    # The sandbox gives commands a private /tmp; without it /tmp is the host's, shared with
    # every other program, so it stops being a root the policy lets commands write.
    try:
        rules, hooks = load_rules(settings.rules), load_hooks(settings.hooks)
    except (RuleError, HookConfigError) as exc:
        raise ConfigError(str(exc)) from exc
    policy = Policy(ws, mode=settings.mode, added_dirs=list(workspace.extra), rules=rules,
                    approvals=ApprovalStore.for_workspace(ws),
                    scratch_dirs=(Path("/tmp"),) if sandbox else (),
                    work=UserWork() if throwaway else None)
    runner = HookRunner(hooks, cwd=ws) if hooks else None
    audit = AuditLog(audit_path(ws))
    gate = Gate(policy, asker=asker, hooks=runner, audit=audit)
    config = SandboxConfig(workspace=ws, writable=list(workspace.extra), readable=list(readable),
                           allowed_hosts=list(settings.allowed_hosts))
    try:
        box = open_sandbox(config, no_sandbox=not sandbox, on_network=lambda host, port, ok:
                           audit.record("network", host=host, port=port, allowed=ok))
    except SandboxUnavailable as exc:
        raise ConfigError(f"{exc}. Refusing to run shell commands unconfined; fix bubblewrap "
                          "or pass --no-sandbox to accept the risk") from exc
    store = None
    if snapshots and settings.snapshots:
        try:
            store = SnapshotStore(ws)
        except SnapshotError:
            store = None
    return Safety(gate=GuardGate(gate, workspace, store), approver=DenyAsks(),
                  launcher=SandboxLauncher(box))
