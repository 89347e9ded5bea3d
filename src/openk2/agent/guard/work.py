"""Work only the working tree holds: throwing it away asks, in every mode, yolo included.

yolo lets the agent delete and overwrite files, and snapshots make most of that undoable. A
serious harness still will not let a command silently throw away what the user has not
committed: snapshots are a safety net the user must know to reach for, and they hold only what
was there before each call. The rule, `always-ask:destroys-work`:

    Deleting, truncating or replacing the whole of a file asks when, at session start, the
    file had uncommitted changes, was untracked (not ignored), or lay outside any git
    repository. Files the session created, files git can give back (committed and clean at
    start) and files `.gitignore` marks disposable stay under the mode's rules.

`UserWork.scan` reads that state once, when the session's policy is built (`git status` per
writable root, a bounded walk where there is no git; a root that cannot be read counts as all
work). The same rule is applied twice: before a shell command or a WriteFile overwrite, on the
paths the call names (`DESTROYS_WORK`, self-tested below at import); and after a shell
command, on what the command actually did (`lost_since`, against the snapshot taken before
it), because a script or a build tool deletes files the policy never sees named.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from openk2.agent.guard.commands import destroy_targets
from openk2.agent.guard.paths import resolve, within
from openk2.agent.guard.rules import _check_examples
from openk2.agent.guard.shell_parse import SimpleCommand, parse_shell
from openk2.agent.guard.snapshots import SnapshotStore

MAX_WALK = 20_000
"""Files listed in a root without git before the root counts as all work (fail closed)."""
GIT_TIMEOUT_S = 15.0

UNCOMMITTED = "has uncommitted changes"
UNTRACKED = "is untracked, so git has no copy of it"
NO_GIT = "is not in a git repository, so git has no copy of it"
UNCHECKED = "could not be checked against git at session start"


@dataclass(frozen=True, slots=True)
class UserWork:
    """The files that held work git cannot give back when the session started."""

    files: Mapping[Path, str] = field(default_factory=dict)
    """Real path -> why it counts (uncommitted, untracked, no git)."""
    unchecked: tuple[Path, ...] = ()
    """Roots whose state could not be read: every file in them counts as work."""

    @classmethod
    def scan(cls, roots: Iterable[Path]) -> UserWork:
        """The state of every root now (call it when the session starts)."""
        files: dict[Path, str] = {}
        unchecked: list[Path] = []
        for root in roots:
            found = _git_work(root)
            found = _walk(root) if found is None else found
            if found is None:
                unchecked.append(root)
            else:
                files.update(found)
        return cls(files, tuple(unchecked))

    def matching(self, pattern: str) -> list[Path]:
        """Work files a resolved glob (`/ws/src/*.py`) names, however many files it matches:
        the rule does not depend on how far a glob expansion was taken."""
        found = [f for f in self.files if PurePosixPath(f).match(pattern)]
        if within(Path(pattern), self.unchecked):
            found.append(Path(pattern))
        return found

    def at_risk(self, path: Path) -> str | None:
        """Why throwing `path` away loses work (a directory: work under it), else None."""
        if within(path, self.unchecked):
            return UNCHECKED
        if (why := self.files.get(path)) is not None:
            return why
        if os.path.isdir(path):
            inside = sum(1 for f in self.files if path in f.parents)
            return f"holds {inside} file(s) git cannot give back" if inside else None
        return None


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        return subprocess.run(
            ["git", "-c", "core.fsmonitor=false", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _git_work(root: Path) -> dict[Path, str] | None:
    """Uncommitted and untracked files of the repository holding `root`; None without git
    (no repository, or `root` is ignored by the one above it)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0:
        return None
    ignored = _git(root, "check-ignore", "-q", ".")
    if ignored is None or ignored.returncode == 0:
        return None
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    if status is None or status.returncode != 0:
        return None
    base = Path(os.path.realpath(top.stdout.strip()))
    files: dict[Path, str] = {}
    for entry in status.stdout.split("\0"):
        code, rel = entry[:2], entry[3:]
        if rel and code[1] != "D" and code != "D ":
            files[base / rel] = UNTRACKED if code == "??" else UNCOMMITTED
    return files


def _walk(root: Path) -> dict[Path, str] | None:
    """Every file of a root without git; None when there are more than MAX_WALK."""
    files: dict[Path, str] = {}
    for top, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            files[Path(top) / name] = NO_GIT
        if len(files) > MAX_WALK:
            return None
    return files


# ---- the rule ---------------------------------------------------------------------------

_GLOB_CHARS = frozenset("*?[")

Expand = Callable[[str, Path], list[Path]]
"""A shell word, from a cwd -> the real paths it names (globs expanded)."""


@dataclass(frozen=True, slots=True)
class WorkRule:
    """`always-ask:destroys-work` on shell commands, with self-tests over an example state."""

    name: str
    reason: str
    match: tuple[str, ...]
    not_match: tuple[str, ...]

    def at_risk(
        self,
        cmd: SimpleCommand,
        cwd: Path,
        work: UserWork,
        roots: Iterable[Path],
        expand: Expand,
    ) -> list[tuple[Path, str]]:
        """Each path inside `roots` that `cmd` throws away and that holds work, with why."""
        roots = tuple(roots)
        found: list[tuple[Path, str]] = []
        for word in destroy_targets(cmd, lambda w: any(p.is_dir() for p in expand(w, cwd))):
            paths = expand(word, cwd)
            globs = [str(p) for p in paths if _GLOB_CHARS & set(str(p))]
            for path in [*paths, *(f for g in globs for f in work.matching(g))]:
                if within(path, roots) and (why := work.at_risk(path)) is not None:
                    found.append((path, why))
        return found

    def self_test(self) -> None:
        """RuleError unless every `match` line hits the example state and no `not_match` does."""
        _check_examples(self.name, self.match, self.not_match, _hits_example)


_EXAMPLE_ROOT = Path("/workspace")
_EXAMPLE_WORK = UserWork(
    {
        _EXAMPLE_ROOT / "work.txt": UNCOMMITTED,
        _EXAMPLE_ROOT / "src" / "draft.py": UNTRACKED,
    }
)
"""The self-tests' state: `work.txt` and `src/draft.py` hold work; any other file does not
(committed and clean, ignored, or created by the session)."""


def _hits_example(line: str) -> bool:
    def plain(word: str, cwd: Path) -> list[Path]:
        return [resolve(word, cwd, Path("/home/user"))]

    return any(
        DESTROYS_WORK.at_risk(c, _EXAMPLE_ROOT, _EXAMPLE_WORK, (_EXAMPLE_ROOT,), plain)
        for c in parse_shell(line).commands
    )


DESTROYS_WORK = WorkRule(
    "always-ask:destroys-work",
    "throws away work git cannot give back",
    match=(
        "rm work.txt",
        "rm -f ./work.txt",
        "/bin/rm src/draft.py",
        "sh -c 'rm -f work.txt'",
        "unlink work.txt",
        "shred -u work.txt",
        "truncate -s 0 work.txt",
        "echo > work.txt",
        ": > src/draft.py",
        "cp other.txt work.txt",
        "mv other.txt src/draft.py",
        "git rm -f work.txt",
        "cat a | tee work.txt",
    ),
    not_match=(
        "rm new.txt",
        "rm clean.txt",
        "echo x >> work.txt",
        "cat work.txt",
        "cp work.txt copy.txt",
        "mv clean.txt new.txt",
        "git rm --cached work.txt",
        "tee -a work.txt",
        "truncate -s 0 clean.txt",
        "sed -i s/a/b/ work.txt",
    ),
)


def lost_since(store: SnapshotStore, snapshot_id: str, work: UserWork) -> list[Path]:
    """Files holding work that are gone or emptied since `snapshot_id` (taken before a
    command ran): what the command threw away without naming it."""
    lost: list[Path] = []
    for rel in store.changed_files(snapshot_id):
        path = store.workspace / rel
        gone = not os.path.lexists(path) or (path.is_file() and path.stat().st_size == 0)
        if gone and work.at_risk(path) is not None:
            lost.append(path)
    return lost


DESTROYS_WORK.self_test()
