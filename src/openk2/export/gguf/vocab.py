"""The Kimi tiktoken vocabulary as llama.cpp's BPE (`gpt2`) tokenizer model expects it.

llama.cpp stores byte-level BPE tokens as text: every byte is mapped to one printable code
point (GPT-2's byte-to-unicode table), and the merges are "LEFT RIGHT" pairs in rank order.
tiktoken files hold only ranks, so each token's merge is recovered by running BPE on its bytes
with the ranks below its own: what remains are exactly the two parts that merge into it.
Special tokens keep their text; `special: true` ones become CONTROL tokens (hidden when
llama.cpp renders output), `special: false` ones (`<think>`, the tool-call markers) become
USER_DEFINED so they still appear in the text that llama-server's parsers read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gguf

from openk2.tokenizer import specials as sp
from openk2.tokenizer.bpe_file import CONFIG_FILENAME, VOCAB_FILENAME, load_added_tokens, load_ranks

PRE_TOKENIZER = "kimi-k2"
"""llama.cpp's name for the K2 split pattern (`tokenizer.ggml.pre`)."""


@dataclass(frozen=True, slots=True)
class GGUFVocab:
    """Everything the `tokenizer.ggml.*` keys hold."""

    tokens: list[str]
    """Token text by id (byte-level unicode for BPE ranks, literal text for specials)."""
    token_types: list[int]
    """`gguf.TokenType` by id."""
    merges: list[str]
    """"LEFT RIGHT" merges in rank order."""
    special_ids: dict[str, int]
    """Every special token's id by its text."""


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (printable bytes map to themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def token_text(token: bytes) -> str:
    """A BPE token's bytes as llama.cpp's byte-level text."""
    table = byte_to_unicode()
    return "".join(table[b] for b in token)


def text_bytes(text: str) -> bytes:
    """The inverse of `token_text` (for checking a written vocabulary)."""
    inverse = {c: b for b, c in byte_to_unicode().items()}
    return bytes(inverse[c] for c in text)


def build_vocab(tokenizer_dir: Path, vocab_size: int) -> GGUFVocab:
    """Read `tiktoken.model` (+ `tokenizer_config.json`) and lay out all `vocab_size` ids."""
    ranks = load_ranks(tokenizer_dir / VOCAB_FILENAME)
    config = tokenizer_dir / CONFIG_FILENAME
    added = load_added_tokens(config) if config.is_file() else None
    added = sp.default_added_tokens(len(ranks)) if added is None else added
    table = sp.build_special_table(len(ranks), added)
    n_ids = len(ranks) + len(table.ids)
    if n_ids != vocab_size:
        raise ValueError(f"the tokenizer in {tokenizer_dir} has {n_ids} ids but the model's "
                         f"vocab_size is {vocab_size}")
    tokens, types = _tokens(ranks, table)
    return GGUFVocab(tokens=tokens, token_types=types, merges=recover_merges(ranks),
                     special_ids=dict(table.ids))


def _tokens(ranks: Mapping[bytes, int], table: sp.SpecialTable) -> tuple[list[str], list[int]]:
    by_id = {rank: token_text(token) for token, rank in ranks.items()}
    types = dict.fromkeys(by_id, int(gguf.TokenType.NORMAL))
    for text, token_id in table.ids.items():
        by_id[token_id] = text
        hidden = token_id in table.skippable
        types[token_id] = int(gguf.TokenType.CONTROL if hidden else gguf.TokenType.USER_DEFINED)
    ids = range(len(by_id))
    return [by_id[i] for i in ids], [types[i] for i in ids]


def recover_merges(ranks: Mapping[bytes, int]) -> list[str]:
    """One "LEFT RIGHT" merge per multi-byte token, ordered by the token's rank."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        left, right = _last_merge(ranks, token, rank)
        merges.append(f"{token_text(left)} {token_text(right)}")
    return merges


def _last_merge(ranks: Mapping[bytes, int], token: bytes, rank: int) -> tuple[bytes, bytes]:
    """BPE over `token`'s bytes with ranks below `rank`; it must stop at exactly two parts."""
    parts = [bytes([b]) for b in token]
    while True:
        best: tuple[int, int] | None = None
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1])
            if pair_rank is not None and pair_rank < rank and (best is None or pair_rank < best[0]):
                best = (pair_rank, i)
        if best is None:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    if len(parts) != 2:
        raise ValueError(f"BPE token {token!r} (rank {rank}) is not the merge of two lower-ranked "
                         f"tokens; llama.cpp could never produce it")
    return parts[0], parts[1]
