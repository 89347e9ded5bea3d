"""Train a small byte-level BPE vocabulary and write it in the Kimi `tiktoken.model` format.

The merges come from HF `tokenizers` (its BPE trainer), with the K2 split pattern as the
pre-tokenizer so that training sees exactly the pieces tiktoken will later encode. The learned
merges become tiktoken ranks: the 256 single bytes first (rank = byte value), then each new
token in the order the trainer created it, which keeps every token reachable by lower-ranked
merges. The 256 reserved specials are not ranks; they are named in `tokenizer_config.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from openk2.tokenizer.bpe_file import CONFIG_FILENAME, VOCAB_FILENAME, config_for, save_ranks
from openk2.tokenizer.pattern import K2_PAT_STR
from openk2.tokenizer.specials import NUM_RESERVED_SPECIAL_TOKENS

MIN_RANKS = 257
"""At least one merge beyond the 256 single bytes."""


class TrainingError(ValueError):
    """The corpus or the requested size cannot produce the vocabulary."""


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What `train_tokenizer` wrote."""

    out_dir: Path
    num_ranks: int
    vocab_size: int
    corpus_chars: int


def bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable-character map that byte-level BPE (GPT-2, HF ByteLevel) uses.

    Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100 onwards, in
    byte order. We need the inverse to turn the trainer's tokens back into raw bytes.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in keep}
    shifted = (b for b in range(256) if b not in mapping)
    for n, b in enumerate(shifted):
        mapping[b] = chr(256 + n)
    return mapping


def learn_ranks(texts: Iterable[str], num_ranks: int) -> dict[bytes, int]:
    """Learn `num_ranks` BPE ranks (256 bytes + merges) from `texts`."""
    from tokenizers import Regex, models, pre_tokenizers, trainers
    from tokenizers import Tokenizer as HFTokenizer

    if num_ranks < MIN_RANKS:
        raise TrainingError(f"need at least {MIN_RANKS} BPE ranks, got {num_ranks}")
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(K2_PAT_STR), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=num_ranks,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer=trainer)
    return _merges_to_ranks(json.loads(hf.to_str())["model"]["merges"], num_ranks)


def _merges_to_ranks(merges: list, num_ranks: int) -> dict[bytes, int]:
    to_byte = {ch: b for b, ch in bytes_to_unicode().items()}
    ranks = {bytes([b]): b for b in range(256)}
    for merge in merges:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        token = bytes(to_byte[ch] for ch in left + right)
        if token not in ranks and len(ranks) < num_ranks:
            ranks[token] = len(ranks)
    if len(ranks) < num_ranks:
        raise TrainingError(f"the corpus only supports {len(ranks)} BPE ranks, "
                            f"{num_ranks} were requested: use more text or a smaller vocabulary")
    return ranks


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: Path) -> TrainResult:
    """Train on `texts` and write `tiktoken.model` + `tokenizer_config.json` to `out_dir`.

    `vocab_size` is the model vocabulary: BPE ranks + the 256 reserved specials.
    """
    num_ranks = vocab_size - NUM_RESERVED_SPECIAL_TOKENS
    if num_ranks < MIN_RANKS:
        raise TrainingError(f"vocab_size must be at least {MIN_RANKS + NUM_RESERVED_SPECIAL_TOKENS}"
                            f" (257 ranks + 256 specials), got {vocab_size}")
    counter = _CharCounter(texts)
    try:
        ranks = learn_ranks(counter, num_ranks)
    except TrainingError:
        if counter.chars == 0:
            raise TrainingError("the training corpus is empty") from None
        raise
    out_dir.mkdir(parents=True, exist_ok=True)
    save_ranks(out_dir / VOCAB_FILENAME, ranks)
    config = json.dumps(config_for(num_ranks), indent=2, ensure_ascii=False) + "\n"
    (out_dir / CONFIG_FILENAME).write_text(config, encoding="utf-8")
    return TrainResult(out_dir, num_ranks, vocab_size, counter.chars)


class _CharCounter:
    """Pass texts through to the trainer while counting characters."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._texts = texts
        self.chars = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._texts:
            self.chars += len(text)
            yield text
