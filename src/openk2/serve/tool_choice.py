"""Forced tool calls (`tool_choice="required"` or a named function) and JSON-schema replies.

Servers guarantee these with structured decoding rather than hoping the model complies; openk2
does the same in K2.6's own wire format, so the output goes through the normal tool-call parser.
After optional reasoning (ended by `</think>` or a token budget) the tool-call guide produces

    <|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>
    {compact JSON matching the tool's parameters}<|tool_call_end|> ... <|tool_calls_section_end|>
    <|im_end|>

forcing every marker and key, and letting the model choose the function name (required), the
argument values and, when parallel calls are allowed, whether another call follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from openk2.engine import json_automaton as ja
from openk2.engine.guided import FreePiece, Piece, PieceGuide, TextPiece, TokenPiece, TokenTable

THINK_END = "</think>"
SECTION_BEGIN = "<|tool_calls_section_begin|>"
SECTION_END = "<|tool_calls_section_end|>"
CALL_BEGIN = "<|tool_call_begin|>"
ARG_BEGIN = "<|tool_call_argument_begin|>"
CALL_END = "<|tool_call_end|>"
IM_END = "<|im_end|>"
MARKERS = (THINK_END, SECTION_BEGIN, SECTION_END, CALL_BEGIN, ARG_BEGIN, CALL_END, IM_END)
TOOL_MARKERS = (SECTION_BEGIN, SECTION_END, CALL_BEGIN, ARG_BEGIN, CALL_END)
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class GuidePlan:
    """What a guided reply may contain; shared by all sequences of one request."""

    ids: dict[str, int]
    """Marker -> token id (see MARKERS)."""
    table: TokenTable
    reasoning_budget: int | None = None
    """Tokens of free reasoning before `</think>` is forced; None when thinking is off."""
    banned_in_reasoning: frozenset[int] = frozenset()
    tools: tuple[tuple[str, dict[str, Any]], ...] = ()
    """(function name, parameters schema) of the functions that may be called."""
    first_index: int = 0
    """Global index of the first call (ids are functions.NAME:IDX, counted per conversation)."""
    max_calls: int = 1

    def reasoning(self) -> list[Piece]:
        if self.reasoning_budget is None:
            return []
        end = self.ids[THINK_END]
        return [FreePiece(end, self.reasoning_budget, self.banned_in_reasoning)]

    def token(self, marker: str) -> TokenPiece:
        return TokenPiece([self.ids[marker]])


class ToolCallGuide(PieceGuide):
    """Reasoning, then a tool-call section with one or more schema-valid calls."""

    def __init__(self, plan: GuidePlan) -> None:
        if not plan.tools:
            raise ValueError("a forced tool call needs at least one tool")
        self._plan = plan
        self._schemas = dict(plan.tools)
        self._calls = 0
        self._name_piece: TextPiece | None = None
        self._more_piece: TokenPiece | None = None
        pieces = [*plan.reasoning(), plan.token(SECTION_BEGIN), *self._call_pieces()]
        super().__init__(pieces, plan.ids[IM_END])

    def on_done(self, piece: Piece) -> None:
        """The chosen name decides the argument schema; CALL_BEGIN starts another call."""
        if piece is self._name_piece:
            name = piece.text.removeprefix("functions.").rsplit(":", 1)[0]
            schema = self._schemas[name] or EMPTY_OBJECT
            self.pieces.insert(1, TextPiece(self._plan.table, ja.start(schema)))
        elif piece is self._more_piece and piece.chosen == self._plan.ids[CALL_BEGIN]:
            self.pieces = self._call_pieces(with_begin=False)

    def _call_pieces(self, with_begin: bool = True) -> list[Piece]:
        """Pieces of one call up to its end marker, then the next-call-or-end choice."""
        plan = self._plan
        index = plan.first_index + self._calls
        self._calls += 1
        names = [f"functions.{name}:{index}" for name, _ in plan.tools]
        self._name_piece = TextPiece(plan.table, ja.start_choice(names))
        pieces: list[Piece] = [plan.token(CALL_BEGIN)] if with_begin else []
        pieces += [self._name_piece, plan.token(ARG_BEGIN), plan.token(CALL_END)]
        more = [CALL_BEGIN, SECTION_END] if self._calls < plan.max_calls else [SECTION_END]
        self._more_piece = TokenPiece([plan.ids[m] for m in more])
        return [*pieces, self._more_piece, plan.token(IM_END)]


def json_reply_guide(plan: GuidePlan, schema: dict[str, Any]) -> PieceGuide:
    """Reasoning, then content that is one JSON value matching `schema`, then `<|im_end|>`."""
    body = TextPiece(plan.table, ja.start(schema))
    return PieceGuide([*plan.reasoning(), body, plan.token(IM_END)], plan.ids[IM_END])


def marker_ids(token_id: Callable[[str], int]) -> dict[str, int]:
    """Every marker's id via a tokenizer's `token_id(name)`; KeyError if one is missing."""
    return {marker: int(token_id(marker)) for marker in MARKERS}


def next_tool_call_index(messages: Iterable[dict[str, Any]]) -> int:
    """Global tool-call counter: how many calls earlier assistant turns made."""
    return sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
