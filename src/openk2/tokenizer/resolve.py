"""Which tokenizer a model uses: one rule for every command (generate, serve, train, inspect).

1. An explicit tokenizer wins: `--tokenizer` on the command line or `data.tokenizer` in a run
   file, naming a directory with `tiktoken.model` (or that file itself).
2. Otherwise a model directory must carry its own: `tiktoken.model` (+ `tokenizer_config.json`
   next to it). A directory without one is an error naming the directory and the missing file,
   never a silent fall-back: a guessed vocabulary would decode a real checkpoint into garbage.
3. With neither (a preset built from scratch) the bundled 8192-id vocabulary is used.

Training copies the resolved files into every `final/` directory (`copy_tokenizer`), so a
finished model serves with no extra flags. Imports no torch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from openk2.tokenizer.bpe_file import CONFIG_FILENAME, VOCAB_FILENAME
from openk2.tokenizer.tokenizer import Tokenizer, default_tokenizer, default_tokenizer_path

TokenizerOrigin = Literal["explicit", "model", "bundled"]


class TokenizerNotFoundError(FileNotFoundError):
    """A tokenizer path or model directory lacks the vocabulary file."""


@dataclass(frozen=True, slots=True)
class TokenizerSource:
    """Where a model's tokenizer files are, and which rule found them."""

    vocab: Path
    """The `tiktoken.model` (BPE ranks) file."""
    config: Path | None
    """`tokenizer_config.json` beside it (special-token names), when present."""
    origin: TokenizerOrigin
    """'explicit' (a given path), 'model' (the model directory's own) or 'bundled'."""

    def load(self) -> Tokenizer:
        """The tokenizer (the bundled one is a shared instance)."""
        if self.origin == "bundled":
            return default_tokenizer()
        return Tokenizer.from_pretrained(self.vocab)

    def describe(self) -> str:
        """One line for logs and `openk2 inspect`, e.g. `runs/x/final/tiktoken.model (model)`."""
        return f"{self.vocab} ({self.origin})"


def resolve_tokenizer(
    model_dir: str | Path | None = None, explicit: str | Path | None = None
) -> TokenizerSource:
    """Apply the module's rule; raises TokenizerNotFoundError saying what is missing where."""
    if explicit is not None:
        return _source(Path(explicit), "explicit", hint=" (give its directory or the file)")
    if model_dir is not None:
        hint = "; pass --tokenizer (or data.tokenizer in a run file) or copy the tokenizer files in"
        return _source(Path(model_dir), "model", hint=hint)
    return _source(default_tokenizer_path(), "bundled", hint="")


def _source(path: Path, origin: TokenizerOrigin, *, hint: str) -> TokenizerSource:
    if origin == "model" and path.is_file():  # a single-file checkpoint: look beside it
        path = path.parent
    vocab = path / VOCAB_FILENAME if path.is_dir() else path
    if not vocab.is_file():
        what = "has no tokenizer" if origin == "model" else "is not a tokenizer"
        where = f"model directory {path} {what}:" if origin == "model" else f"{path} {what}:"
        raise TokenizerNotFoundError(f"{where} {VOCAB_FILENAME} is missing{hint}")
    config = vocab.parent / CONFIG_FILENAME
    return TokenizerSource(vocab=vocab, config=config if config.is_file() else None, origin=origin)


def load_tokenizer(
    model_dir: str | Path | None = None, explicit: str | Path | None = None
) -> Tokenizer:
    """`resolve_tokenizer(...).load()`: the tokenizer a model directory (or preset) uses."""
    return resolve_tokenizer(model_dir, explicit).load()


def check_vocab_fits(tokenizer_ids: int, model_vocab: int, *, fix: str) -> None:
    """A tokenizer must never emit an id the model's embedding table lacks; `fix` says how."""
    if tokenizer_ids > model_vocab:
        raise ValueError(
            f"tokenizer has {tokenizer_ids} ids but the model's vocab_size is {model_vocab}; {fix}"
        )


def copy_tokenizer(source: TokenizerSource, dest: Path) -> list[Path]:
    """Write the tokenizer files into model directory `dest` under their standard names."""
    dest.mkdir(parents=True, exist_ok=True)
    pairs = [(source.vocab, dest / VOCAB_FILENAME)]
    if source.config is not None:
        pairs.append((source.config, dest / CONFIG_FILENAME))
    for src, dst in pairs:
        if src.resolve() != dst.resolve():
            shutil.copy2(src, dst)
    return [dst for _, dst in pairs]
