"""The 256 reserved special tokens that follow the BPE ranks, and the chat-protocol markers.

Kimi K2 appends 256 reserved ids after its 163,584 BPE ranks. The named ones sit at fixed offsets
from the first reserved id (163584 in the real vocabulary); our small vocabularies keep the same
offsets so that every protocol token has the same *relative* id whatever the vocabulary size.
Unnamed reserved ids are called `<|reserved_token_{id}|>`, as in the real tokenizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NUM_RESERVED_SPECIAL_TOKENS = 256
"""Reserved ids appended after the BPE ranks (ids ranks .. ranks+255)."""

BOS = "[BOS]"
EOS = "[EOS]"
IM_END = "<|im_end|>"
IM_USER = "<|im_user|>"
IM_ASSISTANT = "<|im_assistant|>"
IM_SYSTEM = "<|im_system|>"
IM_MIDDLE = "<|im_middle|>"
TOOL_CALLS_SECTION_BEGIN = "<|tool_calls_section_begin|>"
TOOL_CALLS_SECTION_END = "<|tool_calls_section_end|>"
TOOL_CALL_BEGIN = "<|tool_call_begin|>"
TOOL_CALL_ARGUMENT_BEGIN = "<|tool_call_argument_begin|>"
TOOL_CALL_END = "<|tool_call_end|>"
MEDIA_BEGIN = "<|media_begin|>"
MEDIA_CONTENT = "<|media_content|>"
MEDIA_END = "<|media_end|>"
MEDIA_PAD = "<|media_pad|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
UNK = "[UNK]"
PAD = "[PAD]"

# Alternative spelling that some K2 checkpoints emit (llama.cpp had to accept both).
TOOL_CALL_SECTION_BEGIN_ALT = "<|tool_call_section_begin|>"
TOOL_CALL_SECTION_END_ALT = "<|tool_call_section_end|>"


@dataclass(frozen=True, slots=True)
class NamedSpecial:
    """One named reserved token: its offset from the first reserved id and its HF flags."""

    offset: int
    """Position inside the reserved block (real id = number of BPE ranks + offset)."""
    content: str
    """The token's text."""
    special: bool
    """HF `special` flag: `skip_special_tokens` drops only tokens where this is true."""


# Offsets follow the real K2 ids (163584 + offset). Tool-call and think tokens are
# `special: false` in the real tokenizer_config, so skip_special_tokens keeps them.
K2_NAMED_SPECIALS: tuple[NamedSpecial, ...] = (
    NamedSpecial(0, BOS, True),
    NamedSpecial(1, EOS, True),
    NamedSpecial(2, IM_END, True),
    NamedSpecial(3, IM_USER, True),
    NamedSpecial(4, IM_ASSISTANT, True),
    NamedSpecial(6, "<|start_header_id|>", True),
    NamedSpecial(7, "<|end_header_id|>", True),
    NamedSpecial(9, "[EOT]", True),
    NamedSpecial(10, IM_SYSTEM, True),
    NamedSpecial(11, TOOL_CALLS_SECTION_BEGIN, False),
    NamedSpecial(12, TOOL_CALLS_SECTION_END, False),
    NamedSpecial(13, TOOL_CALL_BEGIN, False),
    NamedSpecial(14, TOOL_CALL_ARGUMENT_BEGIN, False),
    NamedSpecial(15, TOOL_CALL_END, False),
    NamedSpecial(17, IM_MIDDLE, True),
    NamedSpecial(18, MEDIA_BEGIN, True),
    NamedSpecial(19, MEDIA_CONTENT, True),
    NamedSpecial(20, MEDIA_END, True),
    NamedSpecial(21, MEDIA_PAD, True),
    NamedSpecial(22, THINK_OPEN, False),
    NamedSpecial(23, THINK_CLOSE, False),
    NamedSpecial(254, UNK, True),
    NamedSpecial(255, PAD, True),
)


def reserved_name(token_id: int) -> str:
    """The name of an unnamed reserved id, as the real tokenizer spells it."""
    return f"<|reserved_token_{token_id}|>"


@dataclass(frozen=True, slots=True)
class SpecialTable:
    """All special tokens of one vocabulary: name -> id, and which ids decode-skipping drops."""

    ids: dict[str, int]
    """Every special token (named and reserved) by its text."""
    skippable: frozenset[int]
    """Ids removed by `decode(skip_special_tokens=True)`."""


def default_added_tokens(num_ranks: int) -> dict[int, tuple[str, bool]]:
    """The K2 named specials placed after `num_ranks` BPE ranks: id -> (content, special)."""
    return {num_ranks + s.offset: (s.content, s.special) for s in K2_NAMED_SPECIALS}


def build_special_table(num_ranks: int, added: Mapping[int, tuple[str, bool]]) -> SpecialTable:
    """Name the 256 reserved ids after `num_ranks` (plus any added ids beyond them).

    `added` maps id -> (content, special), e.g. from `tokenizer_config.json`. Ids inside the
    reserved block get their configured name; the others keep `<|reserved_token_{id}|>`. Ids past
    the block (e.g. a video placeholder registered by a processor) become extra specials.
    """
    first, end = num_ranks, num_ranks + NUM_RESERVED_SPECIAL_TOKENS
    for token_id in added:
        if token_id < first:
            raise ValueError(
                f"added token id {token_id} collides with the BPE ranks (0..{first - 1}); "
                "special tokens must come after the ranks"
            )
    ids: dict[str, int] = {}
    skippable: set[int] = set()
    for token_id in [*range(first, end), *sorted(i for i in added if i >= end)]:
        content, special = added.get(token_id, (reserved_name(token_id), True))
        if content in ids:
            raise ValueError(f"special token {content!r} is defined twice (ids {ids[content]}, "
                             f"{token_id})")
        ids[content] = token_id
        if special:
            skippable.add(token_id)
    return SpecialTable(ids=ids, skippable=frozenset(skippable))
