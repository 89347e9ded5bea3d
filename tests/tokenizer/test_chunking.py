"""The 400k-char / 25k-run input splitting matches the real tokenizer's character loop."""

import re
import sys
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.tokenizer.chunking import MAX_ENCODE_CHARS, MAX_RUN_CHARS, split_for_encoding


def reference_pieces(text: str, max_chars: int, max_run: int) -> Iterator[str]:
    """The real tokenizer's behaviour, written as its straightforward per-character loop."""
    for start in range(0, len(text), max_chars):
        chunk = text[start : start + max_chars]
        run_len, run_is_space, piece_start = 0, chunk[0].isspace() if chunk else False, 0
        for i, ch in enumerate(chunk):
            if ch.isspace() != run_is_space:
                run_len, run_is_space = 1, ch.isspace()
            else:
                run_len += 1
                if run_len > max_run:
                    yield chunk[piece_start:i]
                    piece_start, run_len = i, 1
        yield chunk[piece_start:]


RUNNY = st.lists(
    st.tuples(st.sampled_from(["a", " ", "\n", "\u3000", "x\u00a0", "\x1c", "世"]),
              st.integers(min_value=1, max_value=30)),
    max_size=12,
).map(lambda parts: "".join(s * n for s, n in parts))


@settings(max_examples=300, deadline=None)
@given(RUNNY, st.integers(min_value=5, max_value=40), st.integers(min_value=1, max_value=9))
def test_matches_reference_loop_on_small_limits(text: str, max_chars: int, max_run: int) -> None:
    ours = list(split_for_encoding(text, max_chars, max_run))
    assert ours == list(reference_pieces(text, max_chars, max_run))
    assert "".join(ours) == text


def test_real_limits_cut_long_runs_and_long_inputs() -> None:
    text = "ab " * 10 + "x" * (MAX_RUN_CHARS * 2 + 7) + " " * (MAX_RUN_CHARS + 1) + "end"
    ours = list(split_for_encoding(text))
    assert ours == list(reference_pieces(text, MAX_ENCODE_CHARS, MAX_RUN_CHARS))
    assert len(ours) == 4
    long_text = "word " * (MAX_ENCODE_CHARS // 5 + 10)
    pieces = list(split_for_encoding(long_text))
    assert [len(p) for p in pieces] == [MAX_ENCODE_CHARS, 50]


def test_short_text_is_one_piece() -> None:
    assert list(split_for_encoding("hello world")) == ["hello world"]
    assert list(split_for_encoding("")) == []


def test_re_whitespace_class_is_str_isspace() -> None:
    """The fast path uses `re`'s \\s; it must agree with str.isspace on every code point."""
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    regex_spaces = set(re.findall(r"\s", every))
    isspace = {ch for ch in every if ch.isspace()}
    assert regex_spaces == isspace
