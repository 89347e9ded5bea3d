"""The policy engine: every tool call gets a Decision (allow / ask / deny) and the rule behind it.

Order of authority for one simple command, strictest first: the built-in always-deny checks
(credential stores read or written, writes outside the writable roots, writes to `.git/hooks`,
`.git/config` or `.openk2/`), configured deny rules, the built-in always-ask set (with
`work.DESTROYS_WORK`: deleting or replacing work git cannot give back), configured ask
rules; then a persisted prefix approval or a configured allow rule allows; otherwise the mode
decides. A command line's verdict is the strictest over all its simple commands, so
`git status && rm -rf ~` is denied even though `git status` alone is allowed.

Modes (one meaning each, documented in AGENTS.md):
- `manual`: read-only file tools run; every shell command and every edit asks.
- `auto`: edits inside the writable roots and read-only shell commands run; the rest asks.
- `yolo`: everything runs except what the always-deny / always-ask sets and deny/ask rules stop.
"""

from __future__ import annotations

import glob as globmod
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from openk2.agent.guard.approvals import ApprovalStore, suggest_prefix
from openk2.agent.guard.commands import is_read_only, write_targets
from openk2.agent.guard.paths import (
    credential_store,
    expand_home,
    is_dotenv,
    protected_in_workspace,
    resolve,
    within,
)
from openk2.agent.guard.rules import (
    ALWAYS_ASK,
    ALWAYS_DENY,
    STRICTNESS,
    Access,
    PathRule,
    Rule,
    ToolRule,
    Verdict,
)
from openk2.agent.guard.shell_parse import SimpleCommand, parse_shell
from openk2.agent.guard.work import DESTROYS_WORK, UserWork

Mode: TypeAlias = Literal["manual", "auto", "yolo"]
MODES: tuple[Mode, ...] = ("manual", "auto", "yolo")


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one tool call.

    `rule` names what decided (`always-deny:credential-store`, `always-ask:rm-recursive`,
    `approval:git status`, `mode:auto`, a configured rule's name). `prefixes` are the command
    prefixes a user may approve to allow this call from now on; it is empty when the ask comes
    from a rule that holds even after approval (always-ask, ask rules) or for non-shell calls.
    """

    verdict: Verdict
    rule: str
    reason: str
    command: str = ""
    prefixes: tuple[tuple[str, ...], ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def strictest(decisions: Iterable[Decision]) -> Decision | None:
    """The strictest decision; on ties a rule beats the mode default (so the user sees the
    rule, and no prefix is offered), else the first wins. None for an empty input."""
    best: Decision | None = None
    for d in decisions:
        if best is None or _rank(d) > _rank(best):
            best = d
    return best


def _rank(d: Decision) -> tuple[int, int]:
    return STRICTNESS[d.verdict], 0 if d.rule.startswith(("mode:", "approval:")) else 1


@dataclass(slots=True)
class Policy:
    """Decisions for one workspace. Paths are resolved (symlinks, `..`, `~`) before any check."""

    workspace: Path
    mode: Mode = "auto"
    added_dirs: Sequence[Path] = ()
    rules: Sequence[Rule | PathRule | ToolRule] = ()
    approvals: ApprovalStore | None = None
    home: Path = field(default_factory=Path.home)
    scratch_dirs: Sequence[Path] = (Path("/tmp"),)
    """Extra roots shell commands may write because the sandbox makes them private (/tmp).
    Pass `()` when running with `--no-sandbox`: then /tmp is the real one."""
    work: UserWork | None = None
    """Files holding work git cannot give back, as of session start (`work.py`); None: scan
    the writable roots now, when the policy is built."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        self.workspace = Path(os.path.realpath(self.workspace))
        self.added_dirs = tuple(Path(os.path.realpath(d)) for d in self.added_dirs)
        self.home = Path(os.path.realpath(self.home))
        self.scratch_dirs = tuple(Path(os.path.realpath(d)) for d in self.scratch_dirs)
        for root in self.writable_roots:
            if root != self.home and within(self.home, (root,)):
                raise ValueError(f"refusing writable root {root}: it contains $HOME ({self.home})")
        if self.work is None:
            self.work = UserWork.scan(self.writable_roots)

    @property
    def writable_roots(self) -> tuple[Path, ...]:
        """Where file tools may write: the workspace and the added directories."""
        return (self.workspace, *self.added_dirs)

    # ---- shell ---------------------------------------------------------------------------

    def check_shell(self, command: str, cwd: Path | None = None) -> Decision:
        """Decide a whole command line: the strictest verdict over its simple commands.

        `cd`/`pushd` are followed: later commands are judged from every directory the line
        may be in by then (`(cd a) && rm ../x` is checked from both), and after a computed
        `cd $X` a relative write target counts as computed (ask)."""
        start = Path(os.path.realpath(cwd or self.workspace))
        parsed = parse_shell(command)
        decisions: list[Decision] = []
        if parsed.error:
            decisions.append(Decision("ask", "always-ask:unparseable", parsed.error, command))
        if not parsed.commands and not parsed.error:
            return Decision("allow", "empty", "nothing to run", command)
        where = _Cwds([start])
        for cmd in parsed.commands:
            decisions.append(self._check_command(cmd, where))
            where = where.after(cmd, self.home)
        final = strictest(decisions)
        assert final is not None
        if final.verdict == "ask" and final.prefixes:
            final = _merge_prefixes(final, decisions)
        return final

    def _check_command(self, cmd: SimpleCommand, where: _Cwds) -> Decision:
        forced = strictest(self._forced(cmd, where))
        if forced is not None:
            return forced
        if self.approvals is not None and (prefix := self.approvals.covering(cmd)) is not None:
            return Decision("allow", f"approval:{' '.join(prefix)}", "approved prefix", cmd.text)
        rules = self._shell_rules()
        allow = next((r for r in rules if r.verdict == "allow" and r.matcher(cmd)), None)
        if allow is not None:
            return Decision("allow", allow.name, allow.reason, cmd.text)
        return self._mode_shell(cmd)

    def _forced(self, cmd: SimpleCommand, where: _Cwds) -> list[Decision]:
        """Decisions no approval or allow rule can lift: always-deny/ask and deny/ask rules."""
        found = self._read_checks(cmd, where) + self._write_checks(cmd, where)
        found += self._work_checks(cmd, where)
        for rule in (*ALWAYS_DENY, *self._shell_rules(), *ALWAYS_ASK):
            if rule.verdict != "allow" and rule.matcher(cmd):
                found.append(Decision(rule.verdict, rule.name, rule.reason, cmd.text))
        return found

    def _shell_rules(self) -> list[Rule]:
        return [r for r in self.rules if isinstance(r, Rule)]

    def _mode_shell(self, cmd: SimpleCommand) -> Decision:
        prefix = (suggest_prefix(cmd),) if suggest_prefix(cmd) else ()
        if self.mode == "yolo":
            return Decision("allow", "mode:yolo", "yolo mode allows this command", cmd.text)
        if self.mode == "auto" and is_read_only(cmd):
            return Decision("allow", "mode:auto", "read-only command", cmd.text)
        why = "manual mode asks before every command" if self.mode == "manual" else "not read-only"
        return Decision("ask", f"mode:{self.mode}", why, cmd.text, prefix)

    def _read_checks(self, cmd: SimpleCommand, where: _Cwds) -> list[Decision]:
        """Every word that names a credential store or a dotenv file, from any cwd."""
        found: list[Decision] = []
        for word in _path_words(cmd):
            for cwd in where.dirs:
                for path in self._expand_word(word, cwd):
                    if (d := self._secret_read(path, cmd.text)) is not None:
                        found.append(d)
        return found

    def _secret_read(self, path: Path, text: str) -> Decision | None:
        if (store := credential_store(path, self.home)) is not None:
            return _deny_credential(store, text)
        if is_dotenv(path) and not within(path, self.writable_roots):
            return _deny_credential(f"dotenv file {path}", text)
        if is_dotenv(path):
            return Decision("ask", "always-ask:dotenv", f"reads secrets in {path}", text)
        return None

    def _write_checks(self, cmd: SimpleCommand, where: _Cwds) -> list[Decision]:
        """Every path the command writes, from every directory it may run in."""
        targets, dynamic = write_targets(cmd)
        unknown_base = where.unknown and any(
            not os.path.isabs(expand_home(t, self.home)) for t in targets
        )
        found: list[Decision] = []
        if dynamic or unknown_base:
            why = "writes to a path computed at run time"
            found.append(Decision("ask", "always-ask:computed-write-target", why, cmd.text))
        for target in targets:
            for cwd in where.dirs:
                path = resolve(target, cwd, self.home)
                if (d := self._write_target(path, cmd)) is not None:
                    found.append(d)
        return found

    def _work_checks(self, cmd: SimpleCommand, where: _Cwds) -> list[Decision]:
        """`always-ask:destroys-work`: the command deletes or replaces uncommitted work."""
        assert self.work is not None
        found: list[Decision] = []
        for cwd in where.dirs:
            for path, why in DESTROYS_WORK.at_risk(
                cmd, cwd, self.work, self.writable_roots, self._expand_word
            ):
                found.append(_destroys_work(path, why, cmd.text))
        return found

    def _write_target(self, path: Path, cmd: SimpleCommand) -> Decision | None:
        if not self._shell_may_write(path):
            why = f"{path} is outside the writable roots"
            return Decision("deny", "always-deny:write-outside-roots", why, cmd.text)
        if (rel := self._protected(path)) is not None:
            why = f"{rel} is read-only for the agent"
            return Decision("deny", "always-deny:protected-path", why, cmd.text)
        if within(path, [root / ".git" for root in self.writable_roots]):
            why = "writes inside the repository's .git directory"
            return Decision("ask", "always-ask:git-dir", why, cmd.text)
        if cmd.program == "mv" and not within(path, self.writable_roots):
            why = f"moves files out of the workspace to {path} (the sandbox's /tmp is discarded)"
            return Decision("ask", "always-ask:move-out", why, cmd.text)
        return None

    def _protected(self, path: Path) -> str | None:
        """`.git/hooks`, `.git/config` or `.openk2/` of any writable root, if `path` is one."""
        return next(
            (rel for root in self.writable_roots if (rel := protected_in_workspace(path, root))),
            None,
        )

    def _shell_may_write(self, path: Path) -> bool:
        """Inside a writable root, or in a scratch dir (the sandbox's private /tmp) as long as
        it is neither `$HOME` nor above a writable root (`rm -rf /tmp` when the workspace is in
        /tmp)."""
        if within(path, self.writable_roots):
            return True
        if not within(path, self.scratch_dirs) or within(path, (self.home,)):
            return False
        return not any(path in root.parents for root in self.writable_roots)

    def _expand_word(self, word: str, cwd: Path) -> list[Path]:
        expanded = expand_home(word, self.home)
        if "$" in expanded:
            return []
        if any(ch in expanded for ch in "*?["):
            base = expanded if os.path.isabs(expanded) else str(cwd / expanded)
            matches = globmod.glob(base, include_hidden=True)[:256]
            return [resolve(m, cwd, self.home) for m in matches] + [
                resolve(expanded, cwd, self.home)
            ]
        return [resolve(expanded, cwd, self.home)]

    # ---- file tools ----------------------------------------------------------------------

    def resolve_path(self, path: str | os.PathLike[str]) -> Path:
        """The path `check_path` judges: file tools should act on exactly this one."""
        return resolve(path, self.workspace, self.home)

    def check_path(
        self, path: str | os.PathLike[str], access: Access, *, replaces: bool = False
    ) -> Decision:
        """Decide a file tool's read or write of `path` (resolved first); `replaces`: the
        write replaces the whole file (WriteFile overwrite), so `destroys-work` applies."""
        resolved = resolve(path, self.workspace, self.home)
        found = self._path_forced(resolved, access)
        if replaces:
            found += self._replaces_work(resolved, f"{access} {resolved}")
        text = f"{access} {resolved}"
        rules = [
            r
            for r in self.rules
            if isinstance(r, PathRule) and r.applies(resolved, access, self.workspace)
        ]
        found += [
            Decision(r.verdict, r.name, r.reason, text) for r in rules if r.verdict != "allow"
        ]
        if (forced := strictest(found)) is not None:
            return forced
        allow = next((r for r in rules if r.verdict == "allow"), None)
        if allow is not None:
            return Decision("allow", allow.name, allow.reason, text)
        return self._mode_path(resolved, access, text)

    def _replaces_work(self, path: Path, text: str) -> list[Decision]:
        """`always-ask:destroys-work` for a file tool that replaces a whole file."""
        assert self.work is not None
        if not os.path.isfile(path) or not within(path, self.writable_roots):
            return []
        why = self.work.at_risk(path)
        return [] if why is None else [_destroys_work(path, why, text)]

    def _path_forced(self, path: Path, access: Access) -> list[Decision]:
        text = f"{access} {path}"
        inside = within(path, self.writable_roots)
        if (store := credential_store(path, self.home)) is not None:
            return [_deny_credential(store, text)]
        if is_dotenv(path):
            if not inside:
                return [_deny_credential(f"dotenv file {path}", text)]
            return [Decision("ask", "always-ask:dotenv", f"{path} may hold secrets", text)]
        if access == "write" and not inside:
            return [
                Decision(
                    "deny",
                    "always-deny:write-outside-roots",
                    f"{path} is outside the writable roots",
                    text,
                )
            ]
        if access == "write" and (rel := self._protected(path)):
            return [Decision("deny", "always-deny:protected-path", f"{rel} is read-only", text)]
        if access == "write" and within(path, [r / ".git" for r in self.writable_roots]):
            why = "file tools do not edit git's internals"
            return [Decision("ask", "always-ask:git-dir", why, text)]
        return []

    def _mode_path(self, path: Path, access: Access, text: str) -> Decision:
        inside = within(path, self.writable_roots)
        if access == "read" and (inside or self.mode == "yolo"):
            return Decision("allow", f"mode:{self.mode}", "read", text)
        if access == "read":
            return Decision("ask", f"mode:{self.mode}", f"{path} is outside the workspace", text)
        if self.mode == "manual":
            return Decision("ask", "mode:manual", "manual mode asks before every edit", text)
        return Decision("allow", f"mode:{self.mode}", "edit inside the writable roots", text)

    # ---- other tools ---------------------------------------------------------------------

    def check_tool(self, name: str, *, read_only: bool) -> Decision:
        """Decide a tool that is neither shell nor a file tool (MCP tools, web fetch, ...):
        configured tool rules (strictest wins), else the mode."""
        rules = [r for r in self.rules if isinstance(r, ToolRule) and r.hits_tool(name)]
        found = [Decision(r.verdict, r.name, r.reason, name) for r in rules]
        if (ruled := strictest(found)) is not None:
            return ruled
        if read_only or self.mode == "yolo":
            why = "read-only tool" if read_only else "yolo"
            return Decision("allow", f"mode:{self.mode}", why, name)
        return Decision("ask", f"mode:{self.mode}", f"{name} may change state", name)


@dataclass(frozen=True, slots=True)
class _Cwds:
    """The directories a command of a line may run in, after the `cd`s before it."""

    dirs: list[Path]
    unknown: bool = False

    def after(self, cmd: SimpleCommand, home: Path) -> _Cwds:
        if cmd.program not in ("cd", "pushd") or cmd.wrappers:
            return self
        operands = [a for a in cmd.args if not a.startswith("-") or a == "-"]
        if any(i in cmd.dynamic_args for i in range(1, len(cmd.argv))):
            return _Cwds(self.dirs, True)
        if operands[:1] == ["-"]:
            return self  # back to a directory already in the set
        target = operands[0] if operands else str(home)
        new = [resolve(target, d, home) for d in self.dirs]
        return _Cwds(list(dict.fromkeys([*self.dirs, *new])), self.unknown)


def _deny_credential(store: str, text: str) -> Decision:
    return Decision(
        "deny", "always-deny:credential-store", f"touches a credential store ({store})", text
    )


def _destroys_work(path: Path, why: str, text: str) -> Decision:
    reason = (
        f"throws away {path}, which {why} (a snapshot is kept, but deleting or replacing "
        "work git cannot give back needs the user's approval in every mode)"
    )
    return Decision("ask", DESTROYS_WORK.name, reason, text)


def _path_words(cmd: SimpleCommand) -> list[str]:
    """Every literal word that may name a path: operands, `--opt=value` values, `@file`."""
    words: list[str] = []
    for i, word in enumerate(cmd.argv):
        if i in cmd.dynamic_args and "$HOME" not in word and "${HOME}" not in word:
            continue
        words.append(word)
        if word.startswith("-") and "=" in word:
            words.append(word.split("=", 1)[1])
        if word.startswith("@") and len(word) > 1:
            words.append(word[1:])
    words += [r.target for r in cmd.redirects if r.target is not None]
    return [w for w in words if w and not w.startswith("-")]


def _merge_prefixes(final: Decision, decisions: list[Decision]) -> Decision:
    """An ask from the mode lists every prefix the user would need to approve."""
    prefixes = tuple(dict.fromkeys(p for d in decisions if d.verdict == "ask" for p in d.prefixes))
    approvable = all(d.prefixes for d in decisions if d.verdict == "ask")
    return Decision(
        final.verdict, final.rule, final.reason, final.command, prefixes if approvable else ()
    )
