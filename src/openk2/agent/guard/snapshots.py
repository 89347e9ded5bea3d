"""Workspace snapshots in a shadow git store outside the workspace, for `/undo` and `--rewind`.

Before each edit and each shell command the whole work tree (minus what `.gitignore` excludes
and any `.git`) is committed into a private git directory under openk2's state directory; the
commit id is the snapshot id. Unchanged files cost nothing (git's index and object store), and
the user's own repository, index, hooks and config are never touched: every git call uses an
explicit `GIT_DIR`/`GIT_WORK_TREE`, no global or system config and no hooks. `restore` first
snapshots the current state (so a restore can itself be undone), then puts back every file of
the chosen snapshot and removes files created after it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openk2.agent.guard.approvals import project_key, state_dir

GIT_TIMEOUT_S = 120.0
_FIELD = "\x1f"


class SnapshotError(RuntimeError):
    """git is missing, the store is damaged, or a snapshot id is unknown."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One stored state of the workspace."""

    id: str
    label: str
    time: int
    """Unix time the snapshot was taken."""


def snapshots_root() -> Path:
    return state_dir() / "code" / "snapshots"


class SnapshotStore:
    """The shadow store of one workspace."""

    def __init__(self, workspace: Path, *, root: Path | None = None) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.git_dir = (root or snapshots_root()) / project_key(self.workspace)
        if self.workspace == self.git_dir or self.workspace in self.git_dir.parents:
            raise SnapshotError(f"the snapshot store {self.git_dir} must be outside the workspace")

    def snapshot(self, label: str) -> str:
        """Commit the current work tree; returns the snapshot id."""
        with self._locked():
            self._git("add", "--all")
            self._git(
                "commit", "--quiet", "--allow-empty", "--no-verify", "-m", label or "snapshot"
            )
            return self._git("rev-parse", "HEAD").strip()

    def list(self) -> list[Snapshot]:
        """Snapshots, newest first."""
        if not (self.git_dir / "HEAD").exists():
            return []
        with self._locked():
            try:
                out = self._git("log", f"--format=%H{_FIELD}%ct{_FIELD}%s")
            except SnapshotError:
                return []
        rows = [line.split(_FIELD, 2) for line in out.splitlines() if line]
        return [Snapshot(sha, subject, int(ts)) for sha, ts, subject in rows]

    def resolve(self, snapshot_id: str) -> str:
        """The full id of a snapshot given by (a prefix of) its id; SnapshotError if unknown."""
        if not snapshot_id or not all(c in "0123456789abcdef" for c in snapshot_id.lower()):
            raise SnapshotError(f"not a snapshot id: {snapshot_id!r}")
        matches = [s.id for s in self.list() if s.id.startswith(snapshot_id.lower())]
        if len(matches) != 1:
            raise SnapshotError(
                f"snapshot {snapshot_id!r} is {'ambiguous' if matches else 'unknown'}"
            )
        return matches[0]

    def restore(self, snapshot_id: str) -> str:
        """Put the work tree back to `snapshot_id`; returns the id of the pre-restore snapshot."""
        target = self.resolve(snapshot_id)
        safety = self.snapshot(f"before restoring {target[:12]}")
        with self._locked():
            self._git("restore", f"--source={target}", "--staged", "--worktree", "--", ".")
        return safety

    def restore_paths(self, snapshot_id: str, paths: Sequence[Path]) -> None:
        """Put back only `paths` (inside the workspace) as they were in `snapshot_id`."""
        target = self.resolve(snapshot_id)
        rels = [str(Path(os.path.realpath(p)).relative_to(self.workspace)) for p in paths]
        if not rels:
            return
        with self._locked():
            self._git("restore", f"--source={target}", "--staged", "--worktree", "--", *rels)

    def changed_files(self, snapshot_id: str) -> list[str]:
        """Workspace paths that differ between `snapshot_id` and the work tree now."""
        target = self.resolve(snapshot_id)
        with self._locked():
            self._git("add", "--all")
            out = self._git("diff", "--cached", "--name-only", target)
        return [line for line in out.splitlines() if line]

    # ---- git plumbing --------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One git operation on the store at a time, across threads and processes."""
        self._init()
        with open(self.git_dir / "openk2.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _init(self) -> None:
        if (self.git_dir / "HEAD").exists():
            return
        self.git_dir.mkdir(parents=True, exist_ok=True)
        self._git("init", "--quiet")
        (self.git_dir / "info").mkdir(exist_ok=True)
        (self.git_dir / "info" / "exclude").write_text(".git\n")

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *_GIT_CONFIG, *args],
                cwd=self.workspace,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SnapshotError(f"git {args[0]} failed: {exc}") from exc
        if done.returncode != 0:
            raise SnapshotError(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[:500]}")
        return done.stdout

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_DIR=str(self.git_dir),
            GIT_WORK_TREE=str(self.workspace),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_TERMINAL_PROMPT="0",
        )
        return env


_GIT_CONFIG: Sequence[str] = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "user.name=openk2",
    "-c",
    "user.email=openk2@localhost",
    "-c",
    "core.autocrlf=false",
    "-c",
    "gc.auto=0",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.quotepath=false",
)
