"""The shipped micro-repos: each `tasks/<name>/` holds `repo/` (what the agent sees), `hidden/`
(the grading tests, copied in only after the agent has finished) and `task.toml` (prompt, grading
command, the executables it needs and the known fix the oracle applies)."""

from __future__ import annotations

import fnmatch
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASKS_DIR = Path(__file__).parent / "tasks"


@dataclass(frozen=True, slots=True)
class BenchTask:
    """One micro-repo and how to grade it."""

    name: str
    root: Path
    prompt: str
    grade: tuple[str, ...]
    requires: tuple[str, ...] = ()
    fix: tuple[dict[str, Any], ...] = field(default=())

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def hidden(self) -> Path:
        return self.root / "hidden"

    def missing_tools(self) -> list[str]:
        """Executables this task needs that are not on PATH (the task is then skipped)."""
        return [exe for exe in self.requires if shutil.which(exe) is None]


def load_task(root: Path) -> BenchTask:
    """Read `root/task.toml`; a malformed file names itself in the error."""
    try:
        data = tomllib.loads((root / "task.toml").read_text())
        return BenchTask(name=root.name, root=root, prompt=data["prompt"],
                         grade=tuple(data["grade"]), requires=tuple(data.get("requires", ())),
                         fix=tuple(data.get("fix", ())))  # fmt: skip
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"bad bench task {root}: {exc!r}") from exc


def load_tasks(pattern: str = "*", tasks_dir: Path = TASKS_DIR) -> list[BenchTask]:
    """Tasks whose name matches the glob `pattern` (comma-separated alternatives), by name."""
    pats = [p.strip() for p in pattern.split(",") if p.strip()] or ["*"]
    roots = sorted(d for d in tasks_dir.iterdir() if (d / "task.toml").is_file())
    chosen = [load_task(d) for d in roots if any(fnmatch.fnmatch(d.name, p) for p in pats)]
    if not chosen:
        raise ValueError(f"no bench task matches {pattern!r}")
    return chosen
