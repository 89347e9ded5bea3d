"""Incremental detokenization with stop strings, one instance per sequence.

Stop strings may straddle token boundaries, so the last `len(longest stop) - 1` characters are
held back until the next token shows whether they start a stop string. Text is produced on the
engine thread so the server only forwards deltas.
"""

from __future__ import annotations

from typing import Protocol


class IncrementalDecoder(Protocol):
    """Turns a stream of ids into text, holding back incomplete UTF-8 sequences."""

    def push(self, token_id: int) -> str: ...

    def flush(self) -> str: ...


class EngineTokenizer(Protocol):
    """What the engine needs from a tokenizer (`openk2.tokenizer.Tokenizer` satisfies it)."""

    @property
    def stop_ids(self) -> list[int] | set[int] | tuple[int, ...]: ...

    def encode(self, text: str, allow_special: bool = True) -> list[int]: ...

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str: ...

    def incremental_decoder(self, *, skip_special_tokens: bool = False) -> IncrementalDecoder: ...


class StopStringDetokenizer:
    """Accumulates a sequence's text and reports deltas that are safe to show."""

    def __init__(
        self,
        decoder: IncrementalDecoder,
        stop: list[str],
        include_stop: bool = False,
    ) -> None:
        self._decoder = decoder
        self._stop = stop
        self._include_stop = include_stop
        self._holdback = max((len(s) for s in stop), default=1) - 1
        self.text = ""
        self._emitted = 0
        self._checked = 0

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add one token; return (text delta safe to emit, whether a stop string matched)."""
        self.text += self._decoder.push(token_id)
        if self._match_stop():
            return self._take(len(self.text)), True
        return self._take(len(self.text) - self._holdback), False

    def finish(self) -> str:
        """Flush held-back characters (and any incomplete UTF-8 tail) at the end."""
        self.text += self._decoder.flush()
        self._match_stop()
        return self._take(len(self.text))

    def _match_stop(self) -> bool:
        start = max(0, self._checked - self._holdback)
        self._checked = len(self.text)
        hits = [(i, s) for s in self._stop if (i := self.text.find(s, start)) >= 0]
        if not hits:
            return False
        index, stop = min(hits)
        self.text = self.text[: index + (len(stop) if self._include_stop else 0)]
        return True

    def _take(self, end: int) -> str:
        end = max(end, self._emitted)
        delta = self.text[self._emitted : end]
        self._emitted = end
        return delta
