"""The one tokenizer rule: explicit path, else the model directory's own files, else bundled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from openk2.tokenizer import (
    TokenizerNotFoundError,
    default_tokenizer,
    default_tokenizer_path,
    load_tokenizer,
    resolve_tokenizer,
)
from openk2.tokenizer.resolve import check_vocab_fits, copy_tokenizer


def _model_dir(tmp_path: Path, name: str = "model", *, with_tokenizer: bool = True) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    if with_tokenizer:
        for file in default_tokenizer_path().iterdir():
            shutil.copy(file, folder / file.name)
    return folder


def test_without_model_or_path_the_bundled_vocabulary_is_used() -> None:
    source = resolve_tokenizer()
    assert source.origin == "bundled" and source.vocab.parent == default_tokenizer_path()
    assert source.config is not None and source.load() is default_tokenizer()


def test_a_model_directory_uses_its_own_files(tmp_path: Path) -> None:
    folder = _model_dir(tmp_path)
    source = resolve_tokenizer(folder)
    assert (source.origin, source.vocab, source.config) == (
        "model", folder / "tiktoken.model", folder / "tokenizer_config.json")
    assert load_tokenizer(folder).encode("hi <think>") == default_tokenizer().encode("hi <think>")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"")
    assert resolve_tokenizer(weights).vocab == folder / "tiktoken.model"  # a file: look beside


def test_an_explicit_path_wins_over_the_model_directory(tmp_path: Path) -> None:
    model, other = _model_dir(tmp_path, "model"), _model_dir(tmp_path, "other")
    assert resolve_tokenizer(model, other).vocab == other / "tiktoken.model"
    by_file = resolve_tokenizer(None, other / "tiktoken.model")
    assert by_file.origin == "explicit" and by_file.config == other / "tokenizer_config.json"


def test_a_model_directory_without_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    bare = _model_dir(tmp_path, "final", with_tokenizer=False)
    with pytest.raises(TokenizerNotFoundError, match="model directory .*final has no tokenizer: "
                                                     "tiktoken.model is missing; pass --tokenizer"):
        resolve_tokenizer(bare)
    with pytest.raises(FileNotFoundError, match="nowhere is not a tokenizer: tiktoken.model"):
        resolve_tokenizer(None, tmp_path / "nowhere")


def test_copy_writes_the_standard_names(tmp_path: Path) -> None:
    renamed = tmp_path / "src"
    renamed.mkdir()
    shutil.copy(default_tokenizer_path() / "tiktoken.model", renamed / "my.tiktoken")
    written = copy_tokenizer(resolve_tokenizer(None, renamed / "my.tiktoken"), tmp_path / "out")
    assert written == [tmp_path / "out" / "tiktoken.model"]  # no config beside it: none copied
    assert resolve_tokenizer(tmp_path / "out").load().vocab_size == default_tokenizer().vocab_size
    source = resolve_tokenizer()
    assert {p.name for p in copy_tokenizer(source, tmp_path / "out")} == {
        "tiktoken.model", "tokenizer_config.json"}
    copy_tokenizer(resolve_tokenizer(tmp_path / "out"), tmp_path / "out")  # onto itself: no-op


def test_vocab_fit_check_says_how_to_fix_it() -> None:
    check_vocab_fits(8192, 8192, fix="unused")
    with pytest.raises(ValueError, match="8192 ids but the model's vocab_size is 512; do X"):
        check_vocab_fits(8192, 512, fix="do X")
