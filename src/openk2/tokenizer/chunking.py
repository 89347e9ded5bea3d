"""Input splitting done by the real Kimi tokenizer before tiktoken sees the text.

`tokenization_kimi.py` cuts the input into 400,000-character pieces, then cuts each piece inside
every run of more than 25,000 consecutive whitespace (or non-whitespace) characters, where
"whitespace" is Python's `str.isspace`. A run of length L is cut at run start + 25,000,
+ 50,000, ... . This bounds the regex/BPE work per call; because the cuts change token
boundaries, we reproduce them exactly.

Runs that long are rare, so the common path must cost almost nothing: a run longer than 25,000
characters fully covers at least one aligned window of 12,500 (25,000 / 2) characters, and a
window is uniform only if a single `re.search` for the other class fails. Only then do we walk
the runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_ENCODE_CHARS = 400_000
"""Length of the top-level pieces (`TIKTOKEN_MAX_ENCODE_CHARS` in the real tokenizer)."""
MAX_RUN_CHARS = 25_000
"""Longest run of whitespace or non-whitespace kept in one piece (`MAX_NO_WHITESPACES_CHARS`)."""

# For str patterns, `re`'s \s is exactly str.isspace (tested over every code point).
_SPACE = re.compile(r"\s")
_NON_SPACE = re.compile(r"\S")
_RUN = re.compile(r"\s+|\S+")


def split_for_encoding(
    text: str, max_chars: int = MAX_ENCODE_CHARS, max_run: int = MAX_RUN_CHARS
) -> Iterator[str]:
    """Yield the pieces the real tokenizer encodes separately, in order."""
    for start in range(0, len(text), max_chars):
        chunk = text[start : start + max_chars]
        if _may_have_long_run(chunk, max_run):
            yield from _split_long_runs(chunk, max_run)
        else:
            yield chunk


def _may_have_long_run(chunk: str, max_run: int) -> bool:
    """True if some aligned window is all-whitespace or all-non-whitespace (cheap pre-check)."""
    if len(chunk) <= max_run:
        return False
    window = max(1, max_run // 2)
    for lo in range(0, len(chunk) - window + 1, window):
        hi = lo + window
        if _SPACE.search(chunk, lo, hi) is None or _NON_SPACE.search(chunk, lo, hi) is None:
            return True
    return False


def _split_long_runs(chunk: str, max_run: int) -> Iterator[str]:
    """Cut `chunk` every `max_run` characters inside each over-long run."""
    piece_start = 0
    for run in _RUN.finditer(chunk):
        run_start, run_end = run.span()
        for cut in range(run_start + max_run, run_end, max_run):
            yield chunk[piece_start:cut]
            piece_start = cut
    yield chunk[piece_start:]
