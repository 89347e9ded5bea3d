"""The directories a coding session may work in, and how a tool's path argument resolves.

Every file tool resolves its path here (user home, relative to the workspace, symlinks and
`..` followed by `realpath`), so the gate judges the file that would really be touched, not
the spelling the model chose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Workspace:
    """The workspace root and the extra directories added with `--add-dir`."""

    root: Path
    """Working directory of the session; relative paths and shell commands start here."""
    extra: tuple[Path, ...] = field(default=())
    """Further directories the session may read and write (`--add-dir`)."""

    @classmethod
    def open(cls, root: str | Path, extra: tuple[str | Path, ...] = ()) -> Workspace:
        """Resolve and check the directories (a missing one is a usage error)."""
        dirs = [Path(os.path.realpath(Path(d).expanduser())) for d in (root, *extra)]
        for d in dirs:
            if not d.is_dir():
                raise ValueError(f"not a directory: {d}")
        return cls(dirs[0], tuple(dirs[1:]))

    @property
    def roots(self) -> tuple[Path, ...]:
        """The workspace root followed by the added directories."""
        return (self.root, *self.extra)

    def resolve(self, path: str) -> Path:
        """The real path `path` names: `~` expanded, relative to the root, links followed."""
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = self.root / p
        return Path(os.path.realpath(p))

    def contains(self, path: Path) -> bool:
        """Whether the (resolved) `path` lies inside one of the roots."""
        return any(path == r or path.is_relative_to(r) for r in self.roots)

    def display(self, path: Path) -> str:
        """`path` relative to the root when inside it (shorter tool output), else absolute."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)
