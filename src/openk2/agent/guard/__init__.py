"""openk2.agent.guard: the safety layers every agent tool call goes through.

Public interface (stable; see AGENTS.md in this folder for the meaning of each piece):
policy (`Policy`, `Decision`, modes), shell parsing (`parse_shell`), rules (`Rule`,
`load_rules`, the built-in sets), prefix approvals (`ApprovalStore`), the bubblewrap sandbox
(`Sandbox`, `open_sandbox`, `SandboxUnavailable`), fail-closed hooks (`HookRunner`), the
JSONL audit log (`AuditLog`), workspace snapshots (`SnapshotStore`), untrusted-output marking
(`mark_untrusted`), the work git cannot give back (`UserWork`, `DESTROYS_WORK`) and the
`Gate` that chains them for one session.
"""

from openk2.agent.guard.approvals import (
    ApprovalError,
    ApprovalStore,
    approvals_path,
    describe,
    project_key,
    state_dir,
    suggest_prefix,
)
from openk2.agent.guard.audit import AuditLog, audit_path, read_audit
from openk2.agent.guard.gate import Answer, ApprovalRequest, Asker, Gate, GateResult, reject_all
from openk2.agent.guard.hooks import (
    HookConfigError,
    HookOutcome,
    HookRunner,
    HookSpec,
    load_hooks,
)
from openk2.agent.guard.policy import MODES, Decision, Mode, Policy, strictest
from openk2.agent.guard.rules import (
    ALWAYS_ASK,
    ALWAYS_DENY,
    BUILTIN_RULES,
    Access,
    PathRule,
    Rule,
    RuleError,
    ToolRule,
    Verdict,
    load_rules,
)
from openk2.agent.guard.sandbox import (
    Sandbox,
    SandboxConfig,
    SandboxUnavailable,
    Unsandboxed,
    bwrap_argv,
    open_sandbox,
    probe,
    sandbox_env,
)
from openk2.agent.guard.shell_parse import ParsedShell, Redirect, SimpleCommand, parse_shell
from openk2.agent.guard.snapshots import Snapshot, SnapshotError, SnapshotStore
from openk2.agent.guard.untrusted import is_marked, mark_untrusted, unmark
from openk2.agent.guard.work import DESTROYS_WORK, UserWork, WorkRule, lost_since

__all__ = [
    "ALWAYS_ASK",
    "ALWAYS_DENY",
    "BUILTIN_RULES",
    "DESTROYS_WORK",
    "MODES",
    "Access",
    "Answer",
    "ApprovalError",
    "ApprovalRequest",
    "ApprovalStore",
    "Asker",
    "AuditLog",
    "Decision",
    "Gate",
    "GateResult",
    "HookConfigError",
    "HookOutcome",
    "HookRunner",
    "HookSpec",
    "Mode",
    "ParsedShell",
    "PathRule",
    "Policy",
    "Redirect",
    "Rule",
    "RuleError",
    "Sandbox",
    "SandboxConfig",
    "SandboxUnavailable",
    "SimpleCommand",
    "Snapshot",
    "SnapshotError",
    "SnapshotStore",
    "ToolRule",
    "Unsandboxed",
    "UserWork",
    "Verdict",
    "WorkRule",
    "approvals_path",
    "audit_path",
    "bwrap_argv",
    "describe",
    "is_marked",
    "load_hooks",
    "load_rules",
    "lost_since",
    "mark_untrusted",
    "open_sandbox",
    "parse_shell",
    "probe",
    "project_key",
    "read_audit",
    "reject_all",
    "sandbox_env",
    "state_dir",
    "strictest",
    "suggest_prefix",
    "unmark",
]
