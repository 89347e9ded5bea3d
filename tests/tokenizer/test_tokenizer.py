"""The Tokenizer wrapper: bundled vocabulary, specials, round trips, loading and bad input."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.tokenizer import Tokenizer, default_tokenizer, default_tokenizer_path
from openk2.tokenizer.bpe_file import VocabFileError, load_ranks, save_ranks
from openk2.tokenizer.chunking import MAX_RUN_CHARS, split_for_encoding

TOK = default_tokenizer()


def test_bundled_vocabulary_has_the_k2_layout() -> None:
    assert TOK.num_ranks == 7936
    assert TOK.vocab_size == 8192
    base = 7936
    assert (TOK.bos_id, TOK.eos_id, TOK.im_end_id) == (base, base + 1, base + 2)
    assert TOK.token_id("<|im_user|>") == base + 3
    assert TOK.token_id("<|im_system|>") == base + 10
    assert TOK.token_id("<|im_middle|>") == base + 17
    assert TOK.token_id("<think>") == base + 22
    assert TOK.token_id("</think>") == base + 23
    assert TOK.pad_id == base + 255
    assert TOK.stop_ids == [base + 1, base + 2]
    assert TOK.special_tokens["<|reserved_token_7941|>"] == base + 5
    assert len(TOK.special_tokens) == 256


def test_bundled_files_are_small() -> None:
    sizes = [p.stat().st_size for p in default_tokenizer_path().iterdir()]
    assert sum(sizes) < 300_000


def test_special_strings_are_parsed_only_when_allowed() -> None:
    text = "<|im_user|>user<|im_middle|>hi<|im_end|>"
    ids = TOK.encode(text)
    assert ids[0] == TOK.token_id("<|im_user|>") and ids[-1] == TOK.im_end_id
    plain = TOK.encode(text, allow_special=False)
    assert not any(TOK.is_special(i) for i in plain)
    assert TOK.decode(plain) == text


def test_decode_skips_only_special_flagged_tokens() -> None:
    text = "<think>a</think><|tool_call_begin|>x<|im_end|>[EOS]"
    ids = TOK.encode(text)
    assert TOK.decode(ids, skip_special_tokens=True) == "<think>a</think><|tool_call_begin|>x"
    assert TOK.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_random_unicode_with_and_without_specials(text: str) -> None:
    assert TOK.decode(TOK.encode(text)) == text
    assert TOK.decode(TOK.encode(text, allow_special=False)) == text


SPECIAL_SOUP = st.lists(
    st.one_of(st.text(max_size=8), st.sampled_from(["<|im_end|>", "<think>", "[BOS]",
                                                     "<|tool_call_begin|>", "<|im_e"])),
    max_size=10,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(SPECIAL_SOUP)
def test_round_trip_text_mixed_with_special_strings(text: str) -> None:
    ids = TOK.encode(text)
    assert TOK.decode(ids) == text
    assert ids.count(TOK.im_end_id) == text.count("<|im_end|>")


def test_long_input_follows_the_real_splitting() -> None:
    text = "token " * 3 + "abc" * (MAX_RUN_CHARS // 3 + 5) + " tail"  # cut lands inside "abc"
    expected = [i for piece in split_for_encoding(text)
                for i in TOK.encoding.encode(piece, allowed_special="all")]
    assert TOK.encode(text) == expected
    assert TOK.encode(text) != TOK.encoding.encode(text, allowed_special="all")
    assert TOK.decode(TOK.encode(text)) == text


def test_encode_equals_plain_tiktoken_on_ordinary_text() -> None:
    text = "The quick brown fox. 你好 <|im_end|> 12345\n\n" * 50
    assert TOK.encode(text) == TOK.encoding.encode(text, allowed_special="all")
    assert TOK.encode(text, allow_special=False) == TOK.encoding.encode_ordinary(text)


def test_decode_rejects_unknown_ids() -> None:
    with pytest.raises(ValueError, match=r"token ids must be ints in \[0, 8191\]"):
        TOK.decode([1, 99999])
    with pytest.raises(ValueError, match="token ids"):
        TOK.token_bytes(-1)


def test_encode_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="takes a str"):
        TOK.encode(b"bytes")  # type: ignore[arg-type]


def test_unknown_special_name_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError, match="not a special token"):
        TOK.token_id("<|nope|>")


def test_load_from_file_path_and_directory(tmp_path: Path) -> None:
    shutil.copytree(default_tokenizer_path(), tmp_path / "vocab")
    by_dir = Tokenizer.from_pretrained(tmp_path / "vocab")
    by_file = Tokenizer.from_pretrained(tmp_path / "vocab" / "tiktoken.model")
    assert by_dir.encode("hello <think>") == by_file.encode("hello <think>") == TOK.encode(
        "hello <think>")


def test_config_names_override_the_default_table(tmp_path: Path) -> None:
    shutil.copy(default_tokenizer_path() / "tiktoken.model", tmp_path / "tiktoken.model")
    config = {"added_tokens_decoder": {"7936": {"content": "<s>", "special": True},
                                       "7938": {"content": "<|im_end|>", "special": True}}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.token_id("<s>") == 7936
    assert tok.im_end_id == 7938
    assert tok.token_id("<|reserved_token_7937|>") == 7937  # unnamed in the config
    with pytest.raises(KeyError):
        _ = tok.eos_id


def test_without_config_the_k2_names_are_used(tmp_path: Path) -> None:
    shutil.copy(default_tokenizer_path() / "tiktoken.model", tmp_path / "tiktoken.model")
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.special_tokens == TOK.special_tokens


def test_missing_vocabulary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no tokenizer vocabulary"):
        Tokenizer.from_pretrained(tmp_path)


def test_corrupt_vocabulary_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tiktoken.model").write_text("!!! 0\n")
    with pytest.raises(VocabFileError, match="tiktoken.model:1"):
        Tokenizer.from_pretrained(tmp_path)


def test_bundled_vocab_is_a_valid_bpe_table() -> None:
    ranks = load_ranks(default_tokenizer_path() / "tiktoken.model")
    assert len(ranks) == 7936
    # every multi-byte token is reachable: it splits into two lower-ranked tokens
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    for token, rank in by_rank[256:300]:
        assert any(token[:k] in ranks and token[k:] in ranks
                   and max(ranks[token[:k]], ranks[token[k:]]) < rank
                   for k in range(1, len(token)))


def test_real_k2_scale_layout(tmp_path: Path) -> None:
    """A 163,584-rank vocabulary with a K2-style config puts the specials at the real ids."""
    ranks = {bytes([b]): b for b in range(256)}
    ranks.update({f"<w{i}>".encode(): 256 + i for i in range(163_584 - 256)})
    save_ranks(tmp_path / "tiktoken.model", ranks)
    added = {str(163_584 + off): {"content": name, "special": special}
             for off, name, special in [(0, "[BOS]", True), (1, "[EOS]", True),
                                        (2, "<|im_end|>", True), (22, "<think>", False),
                                        (255, "[PAD]", True)]}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": added}))
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.vocab_size == 163_840
    assert tok.stop_ids == [163_585, 163_586]
    assert tok.encode("x<|im_end|><think>") == [ord("x"), 163_586, 163_606]
    assert tok.token_id("<|reserved_token_163589|>") == 163_589
    assert tok.decode([163_606, 163_839], skip_special_tokens=True) == "<think>"
