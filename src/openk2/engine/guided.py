"""Constrained decoding at the token level: the `TokenGuide` contract and the pieces behind it.

A guide is consulted by the sampler for one sequence: it may force the next token outright
(special markers, JSON keys) or accept/reject candidates, which the sampler tries best-first.
Text pieces are checked character by character against a `json_automaton` state, using a table
of every token's text; special and partial-UTF-8 tokens never match text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from openk2.engine import json_automaton as ja


class TokenGuide(Protocol):
    """Per-sequence constraint on what the next token may be."""

    def forced_token(self) -> int | None:
        """The only acceptable next token, or None when there is a choice."""
        ...

    def accepts(self, token_id: int) -> bool:
        """Whether `token_id` may come next."""
        ...

    def fallback_token(self) -> int:
        """A token that is always acceptable, used when no likely candidate was."""
        ...

    def advance(self, token_id: int) -> None:
        """Record the token that was produced."""
        ...

    @property
    def done(self) -> bool:
        """True once the constrained output is complete."""
        ...


@dataclass(frozen=True, slots=True)
class TokenTable:
    """Each token's text (None for special or incomplete-UTF-8 tokens) and reverse lookups."""

    texts: tuple[str | None, ...]
    by_text: dict[str, int]

    @classmethod
    def build(
        cls,
        vocab_size: int,
        token_bytes: Callable[[int], bytes],
        is_special: Callable[[int], bool],
    ) -> TokenTable:
        texts = [
            None if is_special(token_id) else _utf8_or_none(token_bytes(token_id))
            for token_id in range(vocab_size)
        ]
        by_text: dict[str, int] = {}
        for token_id, text in enumerate(texts):
            if text is not None:
                by_text.setdefault(text, token_id)
        return cls(tuple(texts), by_text)

    def longest_prefix_token(self, text: str) -> int | None:
        """The token spelling the longest prefix of `text` (greedy forced output)."""
        for end in range(min(len(text), 32), 0, -1):
            token_id = self.by_text.get(text[:end])
            if token_id is not None:
                return token_id
        return None


def _utf8_or_none(raw: bytes) -> str | None:
    """The token's text when it is complete UTF-8 on its own (else it cannot be checked)."""
    try:
        return raw.decode("utf-8") or None
    except UnicodeDecodeError:
        return None


class TextPiece:
    """A run of ordinary tokens whose concatenated text must match an automaton state."""

    def __init__(self, table: TokenTable, state: ja.State) -> None:
        self._table = table
        self._state: ja.State | None = state
        self.text = ""

    @property
    def done(self) -> bool:
        return not self._state

    def forced_token(self) -> int | None:
        if self._state is None:
            return None
        return self._table.longest_prefix_token(ja.literal_prefix(self._state))

    def accepts(self, token_id: int) -> bool:
        text = self._table.texts[token_id]
        return text is not None and ja.feed(self._state, text) is not None

    def fallback_token(self) -> int:
        ch = ja.suggest(self._state) if self._state else None
        token_id = self._table.by_text.get(ch) if ch else None
        if token_id is None:
            raise RuntimeError(f"no single-character token for {ch!r}; cannot finish the guide")
        return token_id

    def advance(self, token_id: int) -> None:
        text = self._table.texts[token_id]
        state = ja.feed(self._state, text) if text is not None else None
        if state is None:
            raise ValueError(f"token {token_id} ({text!r}) does not fit the guided text")
        self._state = state
        self.text += text or ""


class TokenPiece:
    """Exactly one token out of a set (a forced marker when the set has one element)."""

    def __init__(self, allowed: list[int]) -> None:
        if not allowed:
            raise ValueError("a token piece needs at least one allowed token")
        self._allowed = allowed
        self.chosen: int | None = None

    @property
    def done(self) -> bool:
        return self.chosen is not None

    def forced_token(self) -> int | None:
        return self._allowed[0] if len(self._allowed) == 1 else None

    def accepts(self, token_id: int) -> bool:
        return token_id in self._allowed

    def fallback_token(self) -> int:
        return self._allowed[-1]

    def advance(self, token_id: int) -> None:
        if token_id not in self._allowed:
            raise ValueError(f"token {token_id} is not one of {self._allowed}")
        self.chosen = token_id


class FreePiece:
    """Unconstrained tokens (reasoning) until `end_id`, forced once `budget` tokens are used."""

    def __init__(self, end_id: int, budget: int, banned: Iterable[int] = ()) -> None:
        self._end_id = end_id
        self._left = budget
        self._banned = frozenset(banned) - {end_id}
        self.done = False

    def forced_token(self) -> int | None:
        return self._end_id if self._left <= 0 else None

    def accepts(self, token_id: int) -> bool:
        return token_id not in self._banned

    def fallback_token(self) -> int:
        return self._end_id

    def advance(self, token_id: int) -> None:
        self._left -= 1
        self.done = token_id == self._end_id


Piece = FreePiece | TextPiece | TokenPiece


class PieceGuide:
    """A `TokenGuide` that walks through pieces in order; `on_done` may extend the plan."""

    def __init__(self, pieces: list[Piece], end_id: int) -> None:
        self.pieces = pieces
        self._end_id = end_id

    @property
    def done(self) -> bool:
        return not self.pieces

    def forced_token(self) -> int | None:
        return self.pieces[0].forced_token() if self.pieces else None

    def accepts(self, token_id: int) -> bool:
        return bool(self.pieces) and self.pieces[0].accepts(token_id)

    def fallback_token(self) -> int:
        return self.pieces[0].fallback_token() if self.pieces else self._end_id

    def advance(self, token_id: int) -> None:
        if not self.pieces:
            return
        piece = self.pieces[0]
        piece.advance(token_id)
        if piece.done:
            self.pieces.pop(0)
            self.on_done(piece)

    def on_done(self, piece: Piece) -> None:
        """Hook for subclasses whose later pieces depend on earlier output."""
