"""Streaming detokenization: never a split character, and the same text as a one-shot decode."""

from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.tokenizer import default_tokenizer

TOK = default_tokenizer()


def test_multibyte_character_split_across_tokens_comes_out_whole() -> None:
    ids = TOK.encode("你好")
    assert len(ids) > 2  # byte-level pieces of two 3-byte characters
    decoder = TOK.incremental_decoder()
    outputs = [decoder.push(i) for i in ids]
    assert "\ufffd" not in "".join(outputs)
    assert "".join(outputs) + decoder.flush() == "你好"
    assert all(out in ("", "你", "好") for out in outputs)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_streamed_text_equals_decode(text: str) -> None:
    ids = TOK.encode(text)
    decoder = TOK.incremental_decoder()
    streamed = "".join(decoder.push(i) for i in ids) + decoder.flush()
    assert streamed == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=TOK.vocab_size - 1), max_size=40))
def test_arbitrary_id_streams_match_decode_including_invalid_utf8(ids: list[int]) -> None:
    decoder = TOK.incremental_decoder()
    streamed = "".join(decoder.push(i) for i in ids) + decoder.flush()
    assert streamed == TOK.decode(ids)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=TOK.vocab_size - 1), max_size=40))
def test_skip_special_tokens_matches_decode(ids: list[int]) -> None:
    decoder = TOK.incremental_decoder(skip_special_tokens=True)
    half = len(ids) // 2
    streamed = decoder.push_many(ids[:half]) + decoder.push_many(ids[half:]) + decoder.flush()
    assert streamed == TOK.decode(ids, skip_special_tokens=True)


def test_dangling_partial_character_is_replaced_on_flush() -> None:
    first_byte_of_ni = TOK.encode("你")[0]
    decoder = TOK.incremental_decoder()
    assert decoder.push(first_byte_of_ni) == ""
    assert decoder.flush() == "\ufffd"
