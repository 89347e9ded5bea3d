"""The tokenizer-facing side of the data pipeline: encode text, render chats, special ids.

`data.py` takes plain callables so it can be tested with a toy tokenizer; this module binds them
to openk2's tokenizer and K2.6 chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openk2.train.config import TrainConfig
from openk2.train.data import Encode, Render, Segment

if TYPE_CHECKING:
    from openk2.tokenizer import TokenizerSource


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


def tokenizer_source(cfg: TrainConfig) -> TokenizerSource:
    """The run's tokenizer by the one rule: `data.tokenizer`, else the start model's own files,
    else (a preset) the bundled vocabulary. `finish_run` copies the same files into `final/`."""
    from openk2.tokenizer import resolve_tokenizer

    return resolve_tokenizer(cfg.model.path, cfg.data.tokenizer)


def load_codec(cfg: TrainConfig, source: TokenizerSource | None = None) -> TextCodec:
    """Bind the run's tokenizer (`source`, default `tokenizer_source(cfg)`) and the K2.6 chat
    template."""
    from openk2.tokenizer.chat import render_chat_segments

    tok = (source or tokenizer_source(cfg)).load()
    data = cfg.data

    def render(
        messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> Sequence[Segment]:
        return render_chat_segments(
            messages, tools, thinking=data.thinking, preserve_thinking=data.preserve_thinking
        )

    return TextCodec(
        encode=tok.encode,
        render=render,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        vocab_size=tok.vocab_size,
    )
