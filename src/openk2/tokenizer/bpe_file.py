"""Read and write the `tiktoken.model` vocabulary format and `tokenizer_config.json`.

`tiktoken.model` holds one BPE rank per line: the token's bytes in base64, a space, the rank.
The Kimi file has 163,584 ranks numbered 0..N-1; the special tokens are not in it. The optional
`tokenizer_config.json` (HF format) names the special ids in `added_tokens_decoder`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openk2.tokenizer.specials import default_added_tokens

VOCAB_FILENAME = "tiktoken.model"
CONFIG_FILENAME = "tokenizer_config.json"


class VocabFileError(ValueError):
    """A vocabulary or tokenizer config file is malformed; the message names file and line."""


def load_ranks(path: Path) -> dict[bytes, int]:
    """Parse a `tiktoken.model` file into {token bytes: rank}, checking it is a valid BPE table.

    Ranks must be unique and contiguous from 0 (the specials are appended after the last one),
    and every single byte must be present, or some inputs could not be encoded at all.
    """
    ranks: dict[bytes, int] = {}
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            token, rank = _parse_line(path, lineno, line)
            if token in ranks:
                raise VocabFileError(f"{path}:{lineno}: token {token!r} appears twice")
            ranks[token] = rank
    _check_ranks(path, ranks)
    return ranks


def _parse_line(path: Path, lineno: int, line: bytes) -> tuple[bytes, int]:
    parts = line.split()
    if len(parts) != 2:
        raise VocabFileError(f"{path}:{lineno}: expected '<base64 token> <rank>', got {line!r}")
    try:
        token = base64.b64decode(parts[0], validate=True)
        rank = int(parts[1])
    except (binascii.Error, ValueError) as e:
        raise VocabFileError(f"{path}:{lineno}: cannot parse {line!r}: {e}") from e
    if not token or rank < 0:
        raise VocabFileError(f"{path}:{lineno}: empty token or negative rank in {line!r}")
    return token, rank


def _check_ranks(path: Path, ranks: Mapping[bytes, int]) -> None:
    if not ranks:
        raise VocabFileError(f"{path}: no BPE ranks found")
    seen = sorted(ranks.values())
    if seen != list(range(len(seen))):
        gap = next(i for i, r in enumerate(seen) if r != i)
        raise VocabFileError(f"{path}: ranks must be unique and contiguous from 0; rank {gap} "
                             "is missing or duplicated")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise VocabFileError(f"{path}: single-byte tokens missing for bytes {missing[:8]}"
                             f"{'...' if len(missing) > 8 else ''}")


def save_ranks(path: Path, ranks: Mapping[bytes, int]) -> None:
    """Write {token bytes: rank} in rank order, one `base64 rank` line each."""
    lines = [f"{base64.b64encode(tok).decode('ascii')} {rank}\n"
             for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])]
    path.write_text("".join(lines), encoding="ascii")


def load_added_tokens(path: Path) -> dict[int, tuple[str, bool]] | None:
    """Read `added_tokens_decoder` from a `tokenizer_config.json`: id -> (content, special).

    Returns None when the config has no `added_tokens_decoder` (callers then use the K2 names).
    """
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise VocabFileError(f"{path}: cannot read tokenizer config: {e}") from e
    if not isinstance(config, dict):
        raise VocabFileError(f"{path}: tokenizer config must be a JSON object")
    decoder = config.get("added_tokens_decoder")
    if decoder is None:
        return None
    if not isinstance(decoder, dict):
        raise VocabFileError(f"{path}: 'added_tokens_decoder' must be an object")
    return {_token_id(path, key): _token_entry(path, key, entry) for key, entry in decoder.items()}


def _token_id(path: Path, key: str) -> int:
    try:
        return int(key)
    except ValueError as e:
        raise VocabFileError(f"{path}: added_tokens_decoder key {key!r} is not an id") from e


def _token_entry(path: Path, key: str, entry: Any) -> tuple[str, bool]:
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
        raise VocabFileError(f"{path}: added_tokens_decoder[{key!r}] needs a string 'content'")
    return entry["content"], bool(entry.get("special", True))


def config_for(num_ranks: int) -> dict[str, Any]:
    """A `tokenizer_config.json` naming the K2 specials after `num_ranks` ranks."""
    added = {
        str(token_id): {"content": content, "lstrip": False, "normalized": False,
                        "rstrip": False, "single_word": False, "special": special}
        for token_id, (content, special) in sorted(default_added_tokens(num_ranks).items())
    }
    return {
        "added_tokens_decoder": added,
        "bos_token": "[BOS]",
        "eos_token": "[EOS]",
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "tokenizer_class": "TikTokenTokenizer",
        "num_reserved_special_tokens": 256,
    }
