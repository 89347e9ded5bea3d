"""Training corpora for the tokenizer trainer: user files, or an offline stdlib corpus.

The bundled vocabulary was trained on text every Python 3.11 install has: the standard
library's source (English docstrings, comments and code), the pydoc topic pages (English
prose) and the CJK codec test texts (Chinese, Japanese, Korean), read in sorted path order.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

TEXT_SUFFIXES = frozenset({".txt", ".md", ".rst", ".py", ".json", ".jsonl", ".html", ".toml",
                           ".yaml", ".yml", ".csv", ".c", ".h", ".js", ".ts", ".sh"})
"""File types taken when a corpus path is a directory."""

DEFAULT_STDLIB_CHARS = 12_000_000
"""Characters of stdlib text the bundled vocabulary was trained on."""


class CorpusError(ValueError):
    """A corpus path is missing or unreadable as UTF-8 text."""


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, plus the text files under each directory (sorted, recursive)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"corpus path {path} does not exist")
    if not files:
        raise CorpusError("no corpus files found")
    return files


def read_texts(files: Iterable[Path]) -> Iterator[str]:
    """Yield each file's text; a file that is not UTF-8 stops with a clear error."""
    for path in files:
        try:
            yield path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
        except OSError as e:
            raise CorpusError(f"cannot read {path}: {e}") from e


def stdlib_files() -> list[Path]:
    """The stdlib corpus files in a fixed order: docs prose, CJK samples, then the sources."""
    root = Path(sysconfig.get_paths()["stdlib"])
    prose = [root / "pydoc_data" / "topics.py"]
    cjk = sorted((root / "test" / "cjkencodings").glob("*-utf8.txt"))
    sources = sorted(p for p in root.rglob("*.py")
                     if p.relative_to(root).parts[0] not in {"site-packages", "test"})
    return [p for p in [*prose, *cjk, *sources] if p.is_file()]


def stdlib_texts(max_chars: int = DEFAULT_STDLIB_CHARS) -> Iterator[str]:
    """The stdlib corpus as texts, cut off after `max_chars` characters (UTF-8 files only)."""
    total = 0
    for path in stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a few stdlib files are deliberately not UTF-8
        text = text[: max_chars - total]
        total += len(text)
        yield text
        if total >= max_chars:
            return
