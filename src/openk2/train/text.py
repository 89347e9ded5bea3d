"""The tokenizer-facing side of the data pipeline: encode text, render chats, special ids.

`data.py` takes plain callables so it can be tested with a toy tokenizer; this module binds them
to openk2's tokenizer and K2.6 chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openk2.train.config import DataConfig
from openk2.train.data import Encode, Render, Segment


@dataclass(kw_only=True, slots=True)
class TextCodec:
    """Everything the data pipeline needs from a tokenizer."""

    encode: Encode
    """Text → ids, with special-token strings parsed as specials (the chat template needs it)."""
    render: Render
    """(messages, tools) → template segments flagged trainable for assistant-generated text."""
    eos_id: int
    """Appended after each pretraining document."""
    pad_id: int
    """Fills SFT rows after their last chat."""
    vocab_size: int
    """Number of ids the tokenizer can produce (the model's vocab must be at least this)."""


def load_codec(cfg: DataConfig) -> TextCodec:
    """Bind openk2's tokenizer (bundled default or `cfg.tokenizer`) and the K2.6 template."""
    from openk2.tokenizer import Tokenizer, default_tokenizer
    from openk2.tokenizer.chat import render_chat_segments

    tok = default_tokenizer() if cfg.tokenizer is None else Tokenizer.from_file(cfg.tokenizer)

    def encode(text: str) -> list[int]:
        return tok.encode(text, allowed_special="all")

    def render(
        messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> Sequence[Segment]:
        return render_chat_segments(
            messages, tools, thinking=cfg.thinking, preserve_thinking=cfg.preserve_thinking
        )

    return TextCodec(
        encode=tok.encode,
        render=render,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        vocab_size=tok.vocab_size,
    )
