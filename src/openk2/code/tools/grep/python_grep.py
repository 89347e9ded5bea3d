"""The pure-Python Grep back end: ripgrep's output for the options Grep exposes."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openk2.agent.tools.base import ToolError


@dataclass(frozen=True, slots=True)
class GrepQuery:
    """One search, as both back ends take it."""

    pattern: str
    target: Path
    """Resolved file or directory to search."""
    base: Path
    """Paths are printed relative to this (the workspace root) when inside it."""
    glob: str | None = None
    ignore_case: bool = False
    context: int = 0
    files_only: bool = False


def python_grep(q: GrepQuery) -> str | ToolError:
    """Search like `rg --sort path --no-ignore`: hidden and binary files skipped."""
    try:
        regex = re.compile(q.pattern, re.IGNORECASE if q.ignore_case else 0)
    except re.error as exc:
        return ToolError(f"invalid regular expression {q.pattern!r}: {exc}", brief="bad regex")
    out: list[str] = []
    for path in _files(q.target):
        shown = _display(path, q.base)
        if q.glob and not _glob_match(q.glob, path, q.target):
            continue
        lines = _text_lines(path)
        if lines is None:
            continue
        hits = [i for i, line in enumerate(lines) if regex.search(line)]
        if hits and q.files_only:
            out.append(shown)
        elif hits:
            if out and q.context:
                out.append("--")
            out.extend(_with_context(shown, lines, hits, q.context))
    return "\n".join(out) + ("\n" if out else "")


def _files(target: Path) -> Iterator[Path]:
    """Files under `target` depth-first, names sorted, hidden entries skipped (as rg)."""
    if target.is_file():
        yield target
        return
    try:
        entries = sorted(os.scandir(target), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _files(path)
        elif entry.is_file(follow_symlinks=False):
            yield path


def _glob_match(glob: str, path: Path, root: Path) -> bool:
    """rg's `--glob`: a pattern without `/` matches the name, else the path under the root."""
    if "/" not in glob:
        return fnmatch.fnmatchcase(path.name, glob)
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    return fnmatch.fnmatchcase(rel, glob) or fnmatch.fnmatchcase(rel, glob.replace("**/", ""))


def _text_lines(path: Path) -> list[str] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    text = data.decode("utf-8", errors="replace")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n") if text else []


def _with_context(shown: str, lines: list[str], hits: list[int], context: int) -> list[str]:
    """`path:N:line` for hits, `path-N-line` around them, `--` between separate groups."""
    hit_set, out, last = set(hits), [], -2
    for i in _context_rows(hits, context, len(lines)):
        if context and last >= 0 and i > last + 1:
            out.append("--")
        sep = ":" if i in hit_set else "-"
        out.append(f"{shown}{sep}{i + 1}{sep}{lines[i]}")
        last = i
    return out


def _context_rows(hits: list[int], context: int, n: int) -> list[int]:
    rows: set[int] = set()
    for i in hits:
        rows.update(range(max(0, i - context), min(n, i + context + 1)))
    return sorted(rows)


def _display(path: Path, base: Path) -> str:
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
