"""The Kimi K2 pre-tokenization pattern, in tiktoken's syntax and as an independent reference.

`K2_PAT_STR` is the real `pat_str`: eight alternatives tried in order (Han runs; words with an
optional leading symbol, case runs and an English contraction; 1-3 digit groups; punctuation
runs; newline runs; whitespace). Its `[...&&[^\\p{Han}]]` class intersection is Rust
`regex`/`fancy-regex` syntax, which is what tiktoken compiles, so tiktoken takes it verbatim.

`reference_split` re-expresses the same semantics for the Python `regex` module without set
operations, so tests can compare tiktoken's split against an implementation that shares none of
its parsing. The semantics it spells out explicitly (checked against tiktoken):
- `\\p{Han}` is the Han *script* (U+3001 `、` is Common, so it is not Han);
- `\\s` is the Unicode `White_Space` property (U+001C..U+001F are not whitespace, U+0085 is);
- `(?i:'s|...)` folds case with simple case folding, so `'ſ` (U+017F) counts as `'s`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]"
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"

K2_PAT_STR = "|".join(
    [
        r"[\p{Han}]+",
        r"[^\r\n\p{L}\p{N}]?" + _UPPER + "*" + _LOWER + "+" + _CONTRACTION,
        r"[^\r\n\p{L}\p{N}]?" + _UPPER + "+" + _LOWER + "*" + _CONTRACTION,
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)
"""The K2 split pattern exactly as `tokenization_kimi.py` hands it to tiktoken."""

# Reference form: intersection with [^\p{Han}] becomes a negative lookahead, \s becomes the
# explicit White_Space property, and the case-insensitive group lists its folded letters.
_NOT_HAN = r"(?!\p{Han})"
_REF_UPPER = r"(?:" + _NOT_HAN + r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}])"
_REF_LOWER = r"(?:" + _NOT_HAN + r"[\p{Ll}\p{Lm}\p{Lo}\p{M}])"
_WS = r"\p{White_Space}"
_REF_CONTRACTION = "(?:'[sS\u017f]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"

REFERENCE_PAT_STR = "|".join(
    [
        r"\p{Han}+",
        r"[^\r\n\p{L}\p{N}]?" + _REF_UPPER + "*" + _REF_LOWER + "+" + _REF_CONTRACTION,
        r"[^\r\n\p{L}\p{N}]?" + _REF_UPPER + "+" + _REF_LOWER + "*" + _REF_CONTRACTION,
        r"\p{N}{1,3}",
        " ?[^" + _WS + r"\p{L}\p{N}]+[\r\n]*",
        "[" + _WS + "]*[\r\n]+",
        "[" + _WS + "]+(?![^" + _WS + "])",
        "[" + _WS + "]+",
    ]
)
"""`K2_PAT_STR`'s semantics for the Python `regex` module, written without class set operations."""


@lru_cache(maxsize=1)
def _reference_regex() -> regex.Pattern[str]:
    import regex  # only the reference needs the `regex` module; tiktoken compiles its own

    return regex.compile(REFERENCE_PAT_STR)


def reference_split(text: str) -> list[str]:
    """Split `text` into pre-tokens the way the K2 pattern does (pure-Python reference)."""
    return _reference_regex().findall(text)
