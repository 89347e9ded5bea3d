"""tiktoken's split with the K2 pattern equals an independent `regex`-module implementation.

tiktoken does not expose its regex split, so we read it back through BPE: with a vocabulary that
contains every substring of the input, each pre-token becomes exactly one token (tiktoken looks a
whole piece up before merging) and no token can span two pieces.
"""

import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, pre_tokenizers

from openk2.tokenizer.pattern import K2_PAT_STR, reference_split


def tiktoken_split(text: str) -> list[str]:
    ranks = {bytes([b]): b for b in range(256)}
    for i in range(len(text)):
        for j in range(i + 1, len(text) + 1):
            ranks.setdefault(text[i:j].encode(), len(ranks))
    enc = tiktoken.Encoding("split-probe", pat_str=K2_PAT_STR, mergeable_ranks=ranks,
                            special_tokens={})
    return [enc.decode_single_token_bytes(t).decode() for t in enc.encode_ordinary(text)]


TRICKY = [
    "Hello World",
    "世界你好 and 中文",  # Han runs
    "I'm don'T DON'T they'LL we've YOU'D",  # contractions, any case
    "it'ſ",  # U+017F folds to s in the contraction group
    "a、b 世界、你",  # U+3001 is Common script, not Han
    "〇々x",  # Han-script Nl / Lm characters
    "12345 1234567 ٣٤٥٦",  # digit groups of at most three, any script
    "CamelCaseHTTPServer getHTTPResponse",  # mixed case
    "x\n\n  y\r\n\tz  \n  ",  # newline runs and trailing whitespace
    "a\x1cb a\x1c\x1cb a\x85b",  # \x1c is not White_Space; \x85 is
    "a\u00a0\u00a0b a \u200bb a\u180eb",  # NBSP, zero-width space, Mongolian vowel separator
    "naïve café Ünïcödé",  # combining-free Latin-1 letters
    "e\u0301 ko\u0308ln",  # combining marks
    "Привет, мир! Ελληνικά",  # Cyrillic / Greek
    "emoji 🙂👍🏽 done",
    "   leading and trailing   ",
    "!!!???... --> ==> :)\n\n",
    "def f(x):\n    return x**2  # ok\n",
    "ǅungla ǈj",  # title-case letters (Lt)
    "ｈｅｌｌｏ ＷＯＲＬＤ",  # full-width Latin
]


def test_tricky_inputs_split_identically() -> None:
    for text in TRICKY:
        assert tiktoken_split(text) == reference_split(text), text


def test_hf_tokenizers_split_matches_too() -> None:
    """The trainer pre-tokenizes with HF `tokenizers`; it must see the same pieces."""
    split = pre_tokenizers.Split(Regex(K2_PAT_STR), behavior="isolated")
    for text in TRICKY:
        assert [p for p, _ in split.pre_tokenize_str(text)] == reference_split(text), text


ALPHABET = st.sampled_from(
    list(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000'sStTdDmMlLrReEvV09٣!?.,-_#")
    + list("aZéÉßǅ世界、〇々ёЖ\u0301\u0308🙂\u200b\u180eｈＷ")
)
RANDOM_TEXT = st.text(alphabet=ALPHABET, max_size=40)


@settings(max_examples=150, deadline=None)
@given(RANDOM_TEXT)
def test_random_strings_split_identically(text: str) -> None:
    assert tiktoken_split(text) == reference_split(text)


# Characters assigned in Unicode 14 (this Python's unicodedata): tiktoken's Rust tables and the
# `regex` module are newer and can disagree only on characters assigned after that.
ASSIGNED = st.characters(blacklist_categories=("Cs", "Cn"))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=ASSIGNED, max_size=30))
def test_arbitrary_unicode_split_identically(text: str) -> None:
    assert tiktoken_split(text) == reference_split(text)


def test_reference_split_covers_the_text() -> None:
    for text in TRICKY:
        assert "".join(reference_split(text)) == text
