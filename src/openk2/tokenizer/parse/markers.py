"""Split streamed text into plain-text runs and protocol markers, across arbitrary chunking.

Markers are the special-token strings that structure K2 output (`</think>`, the tool-call
section/call/argument tokens in both section spellings, `<|im_end|>`). A marker may arrive cut
between two chunks, so the scanner holds back a tail that could still grow into one. Every
marker starts with "<" and contains no other "<", so only the text from the last "<" on can be
such a prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openk2.tokenizer import specials as sp

MARKER_ROLES: dict[str, str] = {
    sp.THINK_OPEN: "think_open",
    sp.THINK_CLOSE: "think_close",
    sp.TOOL_CALLS_SECTION_BEGIN: "section_begin",
    sp.TOOL_CALL_SECTION_BEGIN_ALT: "section_begin",
    sp.TOOL_CALLS_SECTION_END: "section_end",
    sp.TOOL_CALL_SECTION_END_ALT: "section_end",
    sp.TOOL_CALL_BEGIN: "call_begin",
    sp.TOOL_CALL_ARGUMENT_BEGIN: "argument_begin",
    sp.TOOL_CALL_END: "call_end",
    sp.IM_END: "im_end",
}
"""Marker text -> its role in the grammar (both section spellings share a role)."""

_MARKER_RE = re.compile("|".join(re.escape(m) for m in MARKER_ROLES))
_PREFIXES = frozenset(m[:i] for m in MARKER_ROLES for i in range(1, len(m)))


@dataclass(frozen=True, slots=True)
class Event:
    """A run of plain text (`role` is None) or one marker, at `position` in the whole output."""

    text: str
    role: str | None
    position: int


class MarkerScanner:
    """Incremental tokenizer of the output stream into `Event`s."""

    __slots__ = ("_buffer", "_position")

    def __init__(self) -> None:
        self._buffer = ""
        self._position = 0  # offset of _buffer[0] in the whole output

    def feed(self, text: str) -> list[Event]:
        """Events that are certain after `text`; a possible marker prefix is kept back."""
        buffer = self._buffer + text
        events, consumed = self._scan(buffer)
        tail = buffer[consumed:]
        keep = _held_back(tail)
        if len(tail) > keep:
            events.append(Event(tail[: len(tail) - keep], None, self._position + consumed))
        self._position += len(buffer) - keep
        self._buffer = tail[len(tail) - keep :]
        return events

    def finish(self) -> list[Event]:
        """Flush the held-back tail as plain text (a cut-off marker is just text)."""
        events = [Event(self._buffer, None, self._position)] if self._buffer else []
        self._position += len(self._buffer)
        self._buffer = ""
        return events

    def _scan(self, buffer: str) -> tuple[list[Event], int]:
        events: list[Event] = []
        consumed = 0
        for match in _MARKER_RE.finditer(buffer):
            if match.start() > consumed:
                events.append(Event(buffer[consumed : match.start()], None,
                                    self._position + consumed))
            events.append(Event(match.group(), MARKER_ROLES[match.group()],
                                self._position + match.start()))
            consumed = match.end()
        return events, consumed


def _held_back(tail: str) -> int:
    """Length of the suffix of `tail` that is a proper prefix of some marker (0 if none)."""
    start = tail.rfind("<")
    if start < 0 or tail[start:] not in _PREFIXES:
        return 0
    return len(tail) - start
