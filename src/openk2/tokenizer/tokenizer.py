"""The Kimi tiktoken tokenizer: BPE ranks + 256 reserved specials, encoded like the real one.

Loads a `tiktoken.model` (+ optional `tokenizer_config.json`) and encodes exactly as
`tokenization_kimi.py` does: the K2 split pattern, special-token strings in the text parsed as
specials (`allowed_special="all"`), and the 400k / 25k-run input splitting. Only tiktoken and the
stdlib are used here; no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property, lru_cache
from pathlib import Path

import tiktoken

from openk2.tokenizer import specials as sp
from openk2.tokenizer.bpe_file import (
    CONFIG_FILENAME,
    VOCAB_FILENAME,
    load_added_tokens,
    load_ranks,
)
from openk2.tokenizer.chunking import MAX_RUN_CHARS, split_for_encoding
from openk2.tokenizer.incremental import IncrementalDecoder
from openk2.tokenizer.pattern import K2_PAT_STR

DEFAULT_ASSET = "k2-mini"
"""Name of the bundled vocabulary under `openk2/tokenizer/assets/`."""


class Tokenizer:
    """Byte-level BPE tokenizer in the Kimi K2 format (see module docstring)."""

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        added_tokens: Mapping[int, tuple[str, bool]] | None = None,
        *,
        name: str = "kimi",
    ) -> None:
        """Build from BPE ranks; `added_tokens` (id -> (content, special)) names the specials.

        Without `added_tokens` the K2 named specials are placed after the ranks at their real
        offsets (`[BOS]` +0, `[EOS]` +1, `<|im_end|>` +2, ... `[PAD]` +255).
        """
        self.num_ranks = len(ranks)
        added = sp.default_added_tokens(self.num_ranks) if added_tokens is None else added_tokens
        table = sp.build_special_table(self.num_ranks, added)
        self._special_ids = table.ids
        self._skippable = table.skippable
        self._enc = tiktoken.Encoding(
            name, pat_str=K2_PAT_STR, mergeable_ranks=dict(ranks), special_tokens=table.ids
        )
        self._allowed = frozenset(table.ids)
        self._id_to_special = {i: s for s, i in table.ids.items()}

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Tokenizer:
        """Load a directory holding `tiktoken.model` [+ `tokenizer_config.json`], or the file.

        Given the file itself, a `tokenizer_config.json` next to it is used too.
        """
        path = Path(path)
        vocab = path / VOCAB_FILENAME if path.is_dir() else path
        if not vocab.is_file():
            raise FileNotFoundError(f"no tokenizer vocabulary at {vocab} (expected a directory "
                                    f"with {VOCAB_FILENAME} or the file itself)")
        config = vocab.parent / CONFIG_FILENAME
        added = load_added_tokens(config) if config.is_file() else None
        return cls(load_ranks(vocab), added, name=vocab.parent.name or "kimi")

    # ---- vocabulary ----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Model vocabulary size: BPE ranks + 256 reserved specials."""
        return self.num_ranks + sp.NUM_RESERVED_SPECIAL_TOKENS

    @property
    def special_tokens(self) -> dict[str, int]:
        """Every special token (named and `<|reserved_token_N|>`) by its text."""
        return dict(self._special_ids)

    def token_id(self, name: str) -> int:
        """Id of a special token by its text, e.g. `token_id("<|im_end|>")`."""
        try:
            return self._special_ids[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a special token of this vocabulary") from None

    def is_special(self, token_id: int) -> bool:
        """True for the reserved ids (and any added ids after them)."""
        return token_id in self._id_to_special

    @cached_property
    def bos_id(self) -> int:
        return self.token_id(sp.BOS)

    @cached_property
    def eos_id(self) -> int:
        return self.token_id(sp.EOS)

    @cached_property
    def im_end_id(self) -> int:
        return self.token_id(sp.IM_END)

    @cached_property
    def pad_id(self) -> int:
        return self.token_id(sp.PAD)

    @cached_property
    def stop_ids(self) -> list[int]:
        """Generation stops on either: K2.6 ends chat turns with `<|im_end|>`, base text on EOS."""
        return [self.eos_id, self.im_end_id]

    # ---- encode / decode -----------------------------------------------------------------

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Text -> ids. With `allow_special`, special-token strings in `text` become specials
        (what the real tokenizer does); otherwise they are encoded as plain text."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        if len(text) <= MAX_RUN_CHARS:  # no split can apply: one tiktoken call
            return self._encode_piece(text, allow_special)
        ids: list[int] = []
        for piece in split_for_encoding(text):
            ids.extend(self._encode_piece(piece, allow_special))
        return ids

    def _encode_piece(self, text: str, allow_special: bool) -> list[int]:
        if allow_special:
            return self._enc.encode(text, allowed_special=self._allowed, disallowed_special=())
        return self._enc.encode_ordinary(text)

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """Ids -> text (invalid UTF-8 becomes U+FFFD). `skip_special_tokens` drops the specials
        flagged `special` (tool-call and think markers are kept, as in the real tokenizer)."""
        ids = [i for i in ids if i not in self._skippable] if skip_special_tokens else list(ids)
        try:
            return self._enc.decode(ids)
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise ValueError(self._bad_ids_message(ids)) from e

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Ids -> raw bytes, without UTF-8 decoding."""
        ids = list(ids)
        try:
            return self._enc.decode_bytes(ids)
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise ValueError(self._bad_ids_message(ids)) from e

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (a special's bytes are its UTF-8 text)."""
        try:
            return self._enc.decode_single_token_bytes(token_id)
        except (KeyError, ValueError, TypeError, OverflowError) as e:
            raise ValueError(self._bad_ids_message([token_id])) from e

    def _bad_ids_message(self, ids: list[int]) -> str:
        top = self._enc.max_token_value
        bad = [i for i in ids if not isinstance(i, int) or not 0 <= i <= top]
        return f"token ids must be ints in [0, {top}]; got {bad[:5] or ids[:5]}"

    def incremental_decoder(self, *, skip_special_tokens: bool = False) -> IncrementalDecoder:
        """A streaming decoder whose `push(id)` returns only complete characters."""
        skip = self._skippable if skip_special_tokens else frozenset()
        return IncrementalDecoder(self.token_bytes, skip)

    @property
    def encoding(self) -> tiktoken.Encoding:
        """The underlying `tiktoken.Encoding` (for benchmarks and advanced use)."""
        return self._enc

    def __repr__(self) -> str:
        return f"Tokenizer(ranks={self.num_ranks}, vocab_size={self.vocab_size})"


def default_tokenizer_path() -> Path:
    """Directory of the bundled 8192-id vocabulary."""
    return Path(__file__).resolve().parent / "assets" / DEFAULT_ASSET


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The bundled small vocabulary: 7936 BPE ranks + 256 specials = 8192 ids (shared instance)."""
    return Tokenizer.from_pretrained(default_tokenizer_path())
