"""Persisted approvals, keyed by command prefix (`git status`, `pytest tests/`), per project.

Approving "all shell" (kimi-cli's `approve_for_session`) or one exact string (kimi-code) are
both wrong: the first allows `rm -rf ~` after `ls` was approved, the second asks again for
every new argument. A prefix covers a command only when its words equal the command's first
words exactly (`git status` covers `git status -s`, never `git statusx` or `git stash`).
Prefixes of a lone shell or interpreter (`bash`, `python`) are refused: they would approve
anything. The store lives in openk2's state directory, outside the workspace, where the
sandbox does not let commands write; only the user's answer to a prompt adds to it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from openk2.agent.guard.rules import normalized_argv
from openk2.agent.guard.shell_parse import SHELLS, SimpleCommand

SUBCOMMAND_TOOLS = frozenset(
    [
        "git",
        "npm",
        "npx",
        "yarn",
        "pnpm",
        "pip",
        "pip3",
        "uv",
        "poetry",
        "cargo",
        "go",
        "docker",
        "podman",
        "kubectl",
        "gh",
        "make",
        "apt",
        "apt-get",
        "brew",
        "conda",
        "mamba",
        "bun",
        "deno",
        "dotnet",
        "mvn",
        "gradle",
        "terraform",
        "helm",
        "systemctl",
    ]
)
"""Programs whose first operand is a subcommand: the prefix keeps it (`git status`)."""

RUN_TOOLS = frozenset({"npm", "yarn", "pnpm", "bun", "uv", "poetry"})
"""`npm run build`: the script name is part of the prefix too."""

UNBOUNDED = SHELLS | frozenset(
    {
        "python",
        "python3",
        "perl",
        "ruby",
        "node",
        "php",
        "lua",
        "eval",
        "exec",
        "source",
        ".",
        "env",
        "sudo",
        "doas",
        "xargs",
        "nohup",
        "timeout",
        "nice",
        "command",
        "builtin",
        "ssh",
    }
)
"""Programs that can run anything: a prefix must name more than the program."""

MAX_PREFIX_WORDS = 16


class ApprovalError(ValueError):
    """A prefix that would approve too much, or an unreadable approvals file."""


def state_dir() -> Path:
    """openk2's state directory: `$OPENK2_STATE_DIR`, else `$XDG_STATE_HOME/openk2`."""
    if env := os.environ.get("OPENK2_STATE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "openk2"


def project_key(workspace: Path) -> str:
    """A stable short name for a workspace (hash of its resolved path)."""
    return hashlib.sha256(os.path.realpath(workspace).encode()).hexdigest()[:16]


def approvals_path(workspace: Path) -> Path:
    """Where a workspace's approvals are stored."""
    return state_dir() / "code" / "approvals" / f"{project_key(workspace)}.json"


def suggest_prefix(cmd: SimpleCommand) -> tuple[str, ...] | None:
    """The prefix a user would approve for `cmd`, or None if no safe prefix exists."""
    argv = normalized_argv(cmd)
    if not argv or cmd.dynamic_program:
        return None
    prog = argv[0]
    positional = [i for i, a in enumerate(argv[1:], start=1) if not a.startswith("-")]
    if prog.startswith("python") and argv[1:2] == ("-m",) and len(argv) > 2:
        end = 3
    elif prog in SUBCOMMAND_TOOLS and positional:
        end = positional[0] + 1
        if prog in RUN_TOOLS and argv[end - 1] == "run" and len(positional) > 1:
            end = positional[1] + 1
    elif positional:
        end = positional[0] + 1
    else:
        end = 1
    prefix = argv[:end]
    if any(i in cmd.dynamic_args for i in range(end)):
        return None
    return prefix if _bounded(prefix) else None


def _bounded(prefix: Sequence[str]) -> bool:
    return bool(prefix) and not (len(prefix) == 1 and prefix[0] in UNBOUNDED)


def describe(prefix: Sequence[str]) -> str:
    """What approving `prefix` means, shown to the user when it is added."""
    return f"allow from now on, in this project, shell commands starting with `{' '.join(prefix)}`"


class ApprovalStore:
    """Command-prefix approvals of one project, saved as JSON after every change."""

    def __init__(self, path: Path, *, workspace: Path | None = None) -> None:
        if workspace is not None:
            ws = Path(os.path.realpath(workspace))
            real = Path(os.path.realpath(path))
            if real == ws or ws in real.parents:
                raise ApprovalError(f"approvals file {path} must live outside the workspace")
        self.path = path
        self._lock = threading.Lock()
        self._prefixes: dict[tuple[str, ...], str] = self._load()
        """Approved prefix -> when it was added (UTC, ISO 8601)."""

    @classmethod
    def for_workspace(cls, workspace: Path) -> ApprovalStore:
        """The store for `workspace` in openk2's state directory."""
        return cls(approvals_path(workspace), workspace=workspace)

    @property
    def prefixes(self) -> tuple[tuple[str, ...], ...]:
        return tuple(self._prefixes)

    def covering(self, cmd: SimpleCommand) -> tuple[str, ...] | None:
        """The approved prefix that covers `cmd` word for word, or None."""
        argv = normalized_argv(cmd)
        for prefix in self._prefixes:
            n = len(prefix)
            if argv[:n] == prefix and not any(i in cmd.dynamic_args for i in range(n)):
                return prefix
        return None

    def add(self, prefix: Sequence[str]) -> str:
        """Approve `prefix` and persist it; returns the sentence to show the user."""
        words = tuple(prefix)
        if not _bounded(words) or len(words) > MAX_PREFIX_WORDS or any(not w for w in words):
            raise ApprovalError(f"refusing to approve {' '.join(words)!r}: it would allow too much")
        if any(ch in w for w in words for ch in "*?["):
            raise ApprovalError("approval prefixes are literal words, not patterns")
        with self._update():
            self._prefixes.setdefault(words, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return describe(words)

    def remove(self, prefix: Sequence[str]) -> bool:
        """Withdraw an approval; True if it was there."""
        with self._update():
            return self._prefixes.pop(tuple(prefix), None) is not None

    @contextmanager
    def _update(self) -> Iterator[None]:
        """Re-read, change and save under a file lock: sessions of one project share the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(f"{self.path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._prefixes = self._load()
            yield
            self._save()

    def _load(self) -> dict[tuple[str, ...], str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ApprovalError(f"cannot read approvals file {self.path}: {exc}") from exc
        entries = data.get("prefixes") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("prefix"), list) for e in entries
        ):
            raise ApprovalError(f"approvals file {self.path} is not in the expected format")
        return {tuple(str(w) for w in e["prefix"]): str(e.get("added", "")) for e in entries}

    def _save(self) -> None:
        entries = [{"prefix": list(p), "added": at} for p, at in self._prefixes.items()]
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".approvals-")
        with os.fdopen(fd, "w") as f:
            json.dump({"version": 1, "prefixes": entries}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
