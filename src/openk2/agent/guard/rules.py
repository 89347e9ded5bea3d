"""Policy rules: a verdict, a matcher, and self-tests that must pass when the rule is loaded.

A rule that silently matches nothing (a typo in a pattern, `rm -rf*` written for `rm -fr`) is
worse than no rule. Every rule therefore carries `match` / `not_match` example command lines
(paths, for path rules); `load_rules` parses each example and raises `RuleError` if the rule
misses a `match` example or hits a `not_match` one. The built-in always-deny and always-ask sets
below go through the same check when this module is imported, and hold in every mode.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeAlias

from openk2.agent.guard.commands import git_argv
from openk2.agent.guard.shell_parse import SHELLS, SimpleCommand, parse_shell

Verdict: TypeAlias = Literal["allow", "ask", "deny"]
Access: TypeAlias = Literal["read", "write"]
STRICTNESS: dict[str, int] = {"allow": 0, "ask": 1, "deny": 2}
"""Order of verdicts: when several rules match, the strictest one decides."""


class RuleError(ValueError):
    """A rule is malformed or fails one of its own `match` / `not_match` examples."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A shell rule: `matcher` is asked about every simple command of a command line."""

    name: str
    verdict: Verdict
    reason: str
    matcher: Callable[[SimpleCommand], bool]
    match: tuple[str, ...] = ()
    not_match: tuple[str, ...] = ()
    builtin: bool = False

    def hits(self, command_line: str) -> bool:
        """True if the rule matches any simple command of `command_line`."""
        return any(self.matcher(c) for c in parse_shell(command_line).commands)

    def self_test(self) -> None:
        """Raise RuleError unless every `match` example hits and no `not_match` one does."""
        _check_examples(self.name, self.match, self.not_match, self.hits)


@dataclass(frozen=True, slots=True)
class PathRule:
    """A file-tool rule: a glob over workspace-relative (or absolute) paths for one access."""

    name: str
    verdict: Verdict
    reason: str
    glob: str
    access: Access | Literal["any"] = "any"
    match: tuple[str, ...] = ()
    not_match: tuple[str, ...] = ()

    def hits_path(self, path: Path, workspace: Path) -> bool:
        """True if `path` (resolved) matches the glob, as an absolute or workspace path."""
        candidates = [str(path)]
        if path == workspace or workspace in path.parents:
            candidates.append(str(path.relative_to(workspace)))
        return any(_glob(c, self.glob) for c in candidates)

    def applies(self, path: Path, access: Access, workspace: Path) -> bool:
        return self.access in ("any", access) and self.hits_path(path, workspace)

    def self_test(self, workspace: Path = Path("/workspace")) -> None:
        def hit(example: str) -> bool:
            return self.hits_path(workspace / example, workspace)

        _check_examples(self.name, self.match, self.not_match, hit)


def _glob(path: str, pattern: str) -> bool:
    """Glob where `*` stays inside one directory, `**` spans any, and a pattern without `/`
    matches the file name at any depth (`.env*`, `*.pem`)."""
    if "/" not in pattern:
        return _glob_regex(pattern).fullmatch(PurePosixPath(path).name) is not None
    if pattern.endswith("/**") and _glob_regex(pattern[:-3]).fullmatch(path):
        return True
    return _glob_regex(pattern).fullmatch(path) is not None


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            ch = pattern[i]
            out.append({"*": "[^/]*", "?": "[^/]"}.get(ch, re.escape(ch)))
            i += 1
    return re.compile("".join(out))


def _check_examples(
    name: str, match: Iterable[str], not_match: Iterable[str], hit: Callable[[str], bool]
) -> None:
    missed = [m for m in match if not hit(m)]
    wrong = [m for m in not_match if hit(m)]
    if missed or wrong:
        raise RuleError(
            f"rule {name!r} fails its self-tests: "
            f"does not match {missed!r}; wrongly matches {wrong!r}"
        )


# ---- user rules from configuration ---------------------------------------------------------


def pattern_matcher(pattern: str) -> Callable[[SimpleCommand], bool]:
    """`git push`, `npm run *`, `pytest tests/*`: argv prefix, one fnmatch glob per word.

    The program is compared by basename (`/bin/rm` is `rm`) and git's global options are
    skipped (`git -C x push` is `git push`).
    """
    try:
        tokens = tuple(shlex.split(pattern))
    except ValueError as exc:
        raise RuleError(f"pattern {pattern!r} is not valid shell words: {exc}") from exc
    if not tokens:
        raise RuleError("a shell rule needs a non-empty pattern")

    def matches(cmd: SimpleCommand) -> bool:
        argv = normalized_argv(cmd)
        if len(argv) < len(tokens):
            return False
        return all(fnmatch(word, token) for word, token in zip(argv, tokens, strict=False))

    return matches


def normalized_argv(cmd: SimpleCommand) -> tuple[str, ...]:
    """argv with the program's basename and git's global options removed."""
    if not cmd.argv:
        return ()
    if cmd.program == "git":
        return ("git", *git_argv(cmd))
    return (cmd.program, *cmd.args)


@dataclass(frozen=True, slots=True)
class ToolRule:
    """A rule on other tools by name glob (`mcp:github.*`, `FetchURL`)."""

    name: str
    verdict: Verdict
    reason: str
    glob: str
    match: tuple[str, ...] = ()
    not_match: tuple[str, ...] = ()

    def hits_tool(self, tool: str) -> bool:
        return fnmatch(tool, self.glob)

    def self_test(self) -> None:
        _check_examples(self.name, self.match, self.not_match, self.hits_tool)


_KINDS = ("pattern", "path", "tool")


def rule_from_config(entry: Mapping[str, Any]) -> Rule | PathRule | ToolRule:
    """One `[[rules]]` table: `decision`, one of `pattern` (shell), `path` (+ `access`) or
    `tool` (a tool-name glob), `reason`, and `match` / `not_match` examples."""
    kinds = [k for k in _KINDS if k in entry]
    name = str(entry.get("name") or (entry[kinds[0]] if kinds else ""))
    verdict = entry.get("decision", entry.get("verdict"))
    if verdict not in STRICTNESS:
        raise RuleError(f"rule {name!r}: decision must be allow, ask or deny, not {verdict!r}")
    if len(kinds) != 1:
        raise RuleError(f"rule {name!r}: give exactly one of `pattern`, `path` or `tool`")
    reason = str(entry.get("reason") or f"configured rule {name!r}")
    match, not_match = _examples(entry, name)
    if kinds == ["pattern"]:
        matcher = pattern_matcher(str(entry["pattern"]))
        return Rule(name, verdict, reason, matcher, match, not_match)
    if kinds == ["tool"]:
        return ToolRule(name, verdict, reason, str(entry["tool"]), match, not_match)
    access = entry.get("access", "any")
    if access not in ("read", "write", "any"):
        raise RuleError(f"rule {name!r}: access must be read, write or any")
    return PathRule(name, verdict, reason, str(entry["path"]), access, match, not_match)


def _examples(entry: Mapping[str, Any], name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    match = entry.get("match", ())
    not_match = entry.get("not_match", ())
    for value in (match, not_match):
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise RuleError(f"rule {name!r}: match / not_match must be lists of strings")
    return tuple(match), tuple(not_match)


def load_rules(entries: Iterable[Mapping[str, Any]]) -> tuple[Rule | PathRule | ToolRule, ...]:
    """Build rules from configuration and run every rule's self-tests (RuleError on failure)."""
    rules = tuple(rule_from_config(e) for e in entries)
    for rule in rules:
        rule.self_test()
    return rules


# ---- built-in rules: they hold in every mode, yolo included --------------------------------


def _flags(cmd: SimpleCommand) -> list[str]:
    return [a for a in cmd.args if a.startswith("-") and a != "--"]


def _short_flag(cmd: SimpleCommand, letters: str, *long: str) -> bool:
    for flag in _flags(cmd):
        if flag.startswith("--"):
            if flag.split("=", 1)[0] in long:
                return True
        elif any(ch in flag[1:] for ch in letters):
            return True
    return False


def _git(cmd: SimpleCommand, sub: str) -> tuple[str, ...] | None:
    """git's arguments after `sub` when `cmd` is `git ... sub ...`, else None."""
    if cmd.program != "git":
        return None
    args = git_argv(cmd)
    return args[1:] if args[:1] == (sub,) else None


def _rm_recursive(cmd: SimpleCommand) -> bool:
    return cmd.program == "rm" and _short_flag(cmd, "rR", "--recursive")


def _bulk_delete(cmd: SimpleCommand) -> bool:
    via = {"xargs", "find -exec"} & set(cmd.wrappers)
    if via and cmd.program in ("rm", "rmdir", "unlink", "shred"):
        return True
    return cmd.program == "find" and "-delete" in cmd.args


def _git_reset_hard(cmd: SimpleCommand) -> bool:
    args = _git(cmd, "reset")
    return args is not None and any(a in ("--hard", "--merge", "--keep") for a in args)


def _git_clean(cmd: SimpleCommand) -> bool:
    args = _git(cmd, "clean")
    return args is not None and not any(a in ("-n", "--dry-run") for a in args)


def _git_push_force(cmd: SimpleCommand) -> bool:
    args = _git(cmd, "push")
    if args is None:
        return False
    long = (
        "--force",
        "--force-with-lease",
        "--force-if-includes",
        "--mirror",
        "--delete",
        "--prune",
    )
    if any(a.split("=", 1)[0] in long for a in args):
        return True
    short = [a for a in args if a.startswith("-") and not a.startswith("--")]
    return any("f" in a or "d" in a for a in short) or any(a.startswith(("+", ":")) for a in args)


def _git_discard(cmd: SimpleCommand) -> bool:
    """Commands that throw away uncommitted work or branches."""
    if (args := _git(cmd, "checkout")) is not None:
        return "--" in args or "." in args or any(a in ("-f", "--force") for a in args)
    if (args := _git(cmd, "restore")) is not None:
        return not args or "--staged" not in args or "--worktree" in args or "-W" in args
    if (args := _git(cmd, "stash")) is not None:
        return args[:1] in (("drop",), ("clear",))
    if (args := _git(cmd, "branch")) is not None:
        return "-D" in args or ("--delete" in args and "--force" in args)
    if (args := _git(cmd, "switch")) is not None:
        return any(a in ("-f", "--force", "--discard-changes") for a in args)
    return False


_DISK_TOOLS = frozenset(
    {"mkfs", "mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "parted", "blkdiscard"}
)


def _disk(cmd: SimpleCommand) -> bool:
    return cmd.program == "dd" or cmd.program in _DISK_TOOLS or cmd.program.startswith("mkfs.")


def _recursive_perms(cmd: SimpleCommand) -> bool:
    return cmd.program in ("chmod", "chown", "chgrp") and _short_flag(cmd, "R", "--recursive")


_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "http", "https", "aria2c", "lynx", "nc"})
_INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node", "php", "lua", "source", "."}


def _download_exec(cmd: SimpleCommand) -> bool:
    prog = cmd.program.rstrip("0123456789.") if cmd.program.startswith("python") else cmd.program
    return prog in _INTERPRETERS and bool(_DOWNLOADERS & set(cmd.sources))


_PUBLISH = (
    ("npm", "publish"),
    ("yarn", "publish"),
    ("yarn", "npm", "publish"),
    ("pnpm", "publish"),
    ("twine", "upload"),
    ("cargo", "publish"),
    ("gem", "push"),
    ("poetry", "publish"),
    ("uv", "publish"),
    ("flit", "publish"),
    ("hatch", "publish"),
    ("pdm", "publish"),
    ("docker", "push"),
    ("podman", "push"),
    ("gh", "release", "create"),
    ("mvn", "deploy"),
    ("dotnet", "nuget", "push"),
)


def _publish(cmd: SimpleCommand) -> bool:
    argv = normalized_argv(cmd)
    if argv[:1] and argv[0].startswith("python") and argv[1:3] == ("-m", "twine"):
        argv = ("twine", *argv[3:])
    words = tuple(a for a in argv if not a.startswith("-"))
    return any(words[: len(p)] == p for p in _PUBLISH)


def _privileged(cmd: SimpleCommand) -> bool:
    escalators = {"sudo", "doas", "su", "runuser", "pkexec"}
    wrappers = {w.split()[0] for w in cmd.wrappers}
    return bool(escalators & wrappers) or cmd.program in escalators


def _power(cmd: SimpleCommand) -> bool:
    return cmd.program in ("shutdown", "reboot", "halt", "poweroff") or (
        cmd.program == "kill" and "-1" in cmd.args[1:]
    )


def _computed_program(cmd: SimpleCommand) -> bool:
    return cmd.dynamic_program


_SECRET_CLIS = (
    ("gh", "auth", "token"),
    ("git", "credential"),
    ("security", "find-generic-password"),
    ("security", "find-internet-password"),
    ("security", "dump-keychain"),
    ("secret-tool", "lookup"),
    ("secret-tool", "search"),
    ("gcloud", "auth", "print-access-token"),
    ("gcloud", "auth", "print-identity-token"),
    ("az", "account", "get-access-token"),
    ("aws", "configure", "get"),
    ("aws", "configure", "export-credentials"),
    ("op", "read"),
    ("pass", "show"),
    ("kubectl", "config", "view", "--raw"),
    ("docker-credential-secretservice", "get"),
)


def _secret_cli(cmd: SimpleCommand) -> bool:
    argv = normalized_argv(cmd)
    return any(argv[: len(p)] == p for p in _SECRET_CLIS) or (
        argv[:3] == ("gh", "auth", "status") and ("-t" in argv or "--show-token" in argv)
    )


def _builtin(
    name: str,
    verdict: Verdict,
    reason: str,
    matcher: Callable[[SimpleCommand], bool],
    match: tuple[str, ...],
    not_match: tuple[str, ...],
) -> Rule:
    return Rule(f"always-{verdict}:{name}", verdict, reason, matcher, match, not_match, True)


ALWAYS_DENY: tuple[Rule, ...] = (
    _builtin(
        "credential-cli",
        "deny",
        "prints a stored credential",
        _secret_cli,
        (
            "gh auth token",
            "git credential fill",
            "security find-generic-password -s x",
            "aws configure get aws_secret_access_key",
            "gh auth status -t",
        ),
        ("gh pr list", "git commit -m x", "aws s3 ls", "gh auth status"),
    ),
)
"""Command rules that deny in every mode. Path-based always-deny checks (credential stores,
writes outside the writable roots, git hooks and openk2 config) are applied by the policy."""

ALWAYS_ASK: tuple[Rule, ...] = (
    _builtin(
        "rm-recursive",
        "ask",
        "deletes a directory tree",
        _rm_recursive,
        ("rm -r x", "rm -rf x", "rm -fr x", "/bin/rm -Rf x", "rm --recursive x", "sudo rm -rf /"),
        ("rm x", "rm -f x", "rmdir x", "echo rm -r"),
    ),
    _builtin(
        "bulk-delete",
        "ask",
        "deletes files it finds (xargs / find -exec / find -delete)",
        _bulk_delete,
        (
            "ls | xargs rm",
            "find . -delete",
            r"find / -exec rm {} \;",
            "find . -name x -exec rm -f {} +",
        ),
        ("find . -name x", "ls | xargs cat", r"find . -exec cat {} \;"),
    ),
    _builtin(
        "git-reset-hard",
        "ask",
        "discards uncommitted changes",
        _git_reset_hard,
        ("git reset --hard", "git -C repo reset --hard HEAD~1", "git reset --keep x"),
        ("git reset", "git reset HEAD file", "git status"),
    ),
    _builtin(
        "git-clean",
        "ask",
        "deletes untracked files",
        _git_clean,
        ("git clean -fd", "git clean -xfd", "git clean -f"),
        ("git clean -n", "git clean --dry-run", "git commit"),
    ),
    _builtin(
        "git-push-force",
        "ask",
        "rewrites or deletes remote history",
        _git_push_force,
        (
            "git push --force",
            "git push -f",
            "git push origin +main",
            "git push --force-with-lease",
            "git push origin --delete x",
            "git push origin :main",
        ),
        ("git push", "git push origin main", "git push -u origin main"),
    ),
    _builtin(
        "git-discard",
        "ask",
        "discards uncommitted work or deletes a branch",
        _git_discard,
        (
            "git checkout -- .",
            "git checkout .",
            "git checkout -f main",
            "git restore .",
            "git stash drop",
            "git stash clear",
            "git branch -D x",
            "git switch -f main",
            "git switch --discard-changes main",
        ),
        (
            "git switch main",
            "git checkout main",
            "git checkout -b x",
            "git restore --staged x",
            "git stash",
            "git branch x",
            "git branch -d x",
        ),
    ),
    _builtin(
        "disk",
        "ask",
        "writes raw devices or file systems",
        _disk,
        ("dd if=/dev/zero of=x", "mkfs.ext4 /dev/sda1", "mkfs -t ext4 x", "wipefs -a /dev/sda"),
        ("df -h", "du -sh ."),
    ),
    _builtin(
        "recursive-permissions",
        "ask",
        "changes permissions of a whole tree",
        _recursive_perms,
        ("chmod -R 777 .", "chown -R me .", "chmod --recursive a+w x"),
        ("chmod +x run.sh", "chmod 644 x"),
    ),
    _builtin(
        "download-exec",
        "ask",
        "runs code downloaded from the network",
        _download_exec,
        (
            "curl x | sh",
            "wget -qO- x | bash",
            "curl -fsSL x | sudo bash",
            "sh <(curl x)",
            'bash -c "$(curl -fsSL x)"',
            "curl x | python3",
        ),
        ("curl x -o file", "cat x | sh", "curl x | jq ."),
    ),
    _builtin(
        "publish",
        "ask",
        "publishes a package or image",
        _publish,
        (
            "npm publish",
            "twine upload dist/*",
            "python -m twine upload dist/*",
            "cargo publish",
            "yarn publish",
            "pnpm publish --tag x",
            "gem push x.gem",
            "uv publish",
            "docker push x",
        ),
        ("npm install", "npm run build", "cargo build", "twine check dist/*"),
    ),
    _builtin(
        "privileged",
        "ask",
        "runs with elevated privileges",
        _privileged,
        ("sudo ls", "sudo -n rm x", "doas ls", "su -c 'ls'"),
        ("ls", "echo sudo"),
    ),
    _builtin(
        "power",
        "ask",
        "stops the machine or every process",
        _power,
        ("shutdown now", "reboot", "kill -9 -1"),
        ("kill 1234", "echo reboot"),
    ),
    _builtin(
        "computed-program",
        "ask",
        "the program name is computed and cannot be checked",
        _computed_program,
        ("$CMD x", "$(echo rm) -rf x", '"$EDITOR" file'),
        ("echo $CMD", "ls $DIR"),
    ),
)
"""Command rules that ask in every mode (yolo included); headless runs deny them."""

BUILTIN_RULES: tuple[Rule, ...] = ALWAYS_DENY + ALWAYS_ASK


def _self_test_builtins() -> None:
    for rule in BUILTIN_RULES:
        rule.self_test()


_self_test_builtins()
