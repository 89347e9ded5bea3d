"""The tiktoken.model / tokenizer_config.json readers and writers, including malformed files."""

import base64
import json
from pathlib import Path

import pytest

from openk2.tokenizer.bpe_file import (
    VocabFileError,
    config_for,
    load_added_tokens,
    load_ranks,
    save_ranks,
)


def _byte_ranks() -> dict[bytes, int]:
    return {bytes([b]): b for b in range(256)}


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    ranks = _byte_ranks() | {b"ab": 256, "世".encode(): 257}
    save_ranks(tmp_path / "tiktoken.model", ranks)
    assert load_ranks(tmp_path / "tiktoken.model") == ranks
    first = (tmp_path / "tiktoken.model").read_text().splitlines()[0]
    assert first == "AA== 0"


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "tiktoken.model"
    path.write_text("\n".join(lines) + "\n")
    return path


def _byte_lines() -> list[str]:
    return [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["not-base64! 256"], "cannot parse"),
        (["YWI= x"], "cannot parse"),
        (["YWI="], "expected '<base64 token> <rank>'"),
        (["YWI= 257"], "contiguous"),
        (["YWI= 256", "YWI= 257"], "appears twice"),
        (["YWI= -1"], "negative rank"),
    ],
)
def test_malformed_vocab_lines_name_the_problem(tmp_path: Path, extra: list[str],
                                                message: str) -> None:
    with pytest.raises(VocabFileError, match=message):
        load_ranks(_write(tmp_path, _byte_lines() + extra))


def test_missing_single_byte_is_reported(tmp_path: Path) -> None:
    lines = [f"{base64.b64encode(bytes([b])).decode()} {b - 1}" for b in range(1, 256)]
    with pytest.raises(VocabFileError, match=r"missing for bytes \[0\]"):
        load_ranks(_write(tmp_path, lines))


def test_empty_vocab_is_reported(tmp_path: Path) -> None:
    with pytest.raises(VocabFileError, match="no BPE ranks"):
        load_ranks(_write(tmp_path, []))


def test_config_round_trip_names_specials_after_the_ranks(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps(config_for(300)))
    added = load_added_tokens(path)
    assert added is not None
    assert added[300] == ("[BOS]", True)
    assert added[302] == ("<|im_end|>", True)
    assert added[313] == ("<|tool_call_begin|>", False)
    assert added[555] == ("[PAD]", True)


def test_config_without_added_tokens_returns_none(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text('{"bos_token": "[BOS]"}')
    assert load_added_tokens(path) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot read tokenizer config"),
        ("[]", "must be a JSON object"),
        ('{"added_tokens_decoder": []}', "must be an object"),
        ('{"added_tokens_decoder": {"x": {"content": "a"}}}', "is not an id"),
        ('{"added_tokens_decoder": {"5": {"special": true}}}', "needs a string 'content'"),
    ],
)
def test_malformed_config_is_reported(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(text)
    with pytest.raises(VocabFileError, match=message):
        load_added_tokens(path)
