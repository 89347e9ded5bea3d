"""The BPE trainer: writes a loadable K2-format vocabulary, deterministically; bad input errors."""

from pathlib import Path

import pytest
from tokenizers import pre_tokenizers

from openk2.tokenizer import Tokenizer, default_tokenizer_path
from openk2.tokenizer.corpus import (
    CorpusError,
    expand_paths,
    read_texts,
    stdlib_files,
    stdlib_texts,
)
from openk2.tokenizer.train import TrainingError, bytes_to_unicode, train_tokenizer

CORPUS = [*stdlib_texts(200_000), "你好，世界。機器學習很有趣。" * 10]


def test_byte_map_matches_hf_byte_level_alphabet() -> None:
    mapping = bytes_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert set(mapping.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert mapping[ord("a")] == "a" and mapping[ord(" ")] == "Ġ"


def test_trains_a_loadable_vocabulary(tmp_path: Path) -> None:
    result = train_tokenizer(iter(CORPUS), 256 + 400, tmp_path)
    assert (result.num_ranks, result.vocab_size) == (400, 656)
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.vocab_size == 656 and tok.num_ranks == 400
    assert tok.im_end_id == 402 and tok.token_id("<think>") == 400 + 22
    text = "The quick brown fox.<|im_end|> 你好"
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode("return self.value")) < len("return self.value")  # merges applied


def test_training_is_deterministic(tmp_path: Path) -> None:
    train_tokenizer(iter(CORPUS), 600, tmp_path / "a")
    train_tokenizer(iter(CORPUS), 600, tmp_path / "b")
    for name in ("tiktoken.model", "tokenizer_config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_corpus_too_small_for_the_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="only supports"):
        train_tokenizer(iter(["tiny text"]), 256 + 5000, tmp_path)


def test_empty_corpus_and_too_small_vocab_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="empty"):
        train_tokenizer(iter([]), 1000, tmp_path)
    with pytest.raises(TrainingError, match="at least 513"):
        train_tokenizer(iter(CORPUS), 400, tmp_path)


def test_corpus_paths_expand_and_reject_bad_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("alpha")
    (tmp_path / "d" / "skip.bin").write_bytes(b"\x00")
    (tmp_path / "b.md").write_text("beta")
    files = expand_paths([tmp_path / "d", tmp_path / "b.md"])
    assert [f.name for f in files] == ["a.txt", "b.md"]
    assert list(read_texts(files)) == ["alpha", "beta"]
    with pytest.raises(CorpusError, match="does not exist"):
        expand_paths([tmp_path / "missing"])
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        list(read_texts([tmp_path / "latin1.txt"]))


def test_stdlib_corpus_is_available_offline() -> None:
    files = stdlib_files()
    assert len(files) > 100
    assert files[0].name == "topics.py"


def test_bundled_vocab_config_names_all_k2_specials() -> None:
    text = (default_tokenizer_path() / "tokenizer_config.json").read_text()
    for name in ("[BOS]", "<|im_end|>", "<|tool_calls_section_begin|>", "<think>", "[PAD]"):
        assert f'"{name}"' in text
