"""Split streamed text into plain-text runs and protocol markers, across arbitrary chunking.

Markers are the special-token strings of K2 output: `<think>`/`</think>`, the tool-call
section/call/argument tokens in both section spellings, `<|im_end|>`, and every other named K2
special (`<|im_user|>`, `<|media_pad|>`, `[EOS]`, ...), which has no meaning in a reply and is
only ever stripped. A marker may arrive cut between two chunks, so the scanner holds back a tail
that could still grow into one. Every marker starts with an opener ("<" or "[") and contains no
other opener, so only the text from the last opener on can be such a prefix.

`MarkerFilter` applies the same rule to a finished text channel (content, reasoning): removing
a misplaced marker can join the text around it into a new marker (`<|tool_call_` + `<think>` +
`end|>`), so the user-visible channels pass through a filter that strips any marker the joined
text forms, holding back a possible prefix until it is decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openk2.tokenizer import specials as sp

_GRAMMAR = frozenset({sp.THINK_OPEN, sp.THINK_CLOSE, sp.TOOL_CALLS_SECTION_BEGIN,
                      sp.TOOL_CALLS_SECTION_END, sp.TOOL_CALL_BEGIN, sp.TOOL_CALL_ARGUMENT_BEGIN,
                      sp.TOOL_CALL_END, sp.IM_END})
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
    **{s.content: "special" for s in sp.K2_NAMED_SPECIALS if s.content not in _GRAMMAR},
}
"""Marker text -> its role in the grammar (both section spellings share a role)."""

_OPENERS = "<["
_MARKER_RE = re.compile("|".join(re.escape(m) for m in sorted(MARKER_ROLES, key=len,
                                                               reverse=True)))
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
    start = max(tail.rfind(opener) for opener in _OPENERS)
    if start < 0 or tail[start:] not in _PREFIXES:
        return 0
    return len(tail) - start


def contains_marker(text: str) -> bool:
    """Whether any marker string occurs in `text`."""
    return _MARKER_RE.search(text) is not None


class MarkerFilter:
    """One user-visible channel: strips every marker its concatenated text would contain."""

    __slots__ = ("_pending", "stripped")

    def __init__(self) -> None:
        self._pending = ""  # not yet emitted: a possible marker prefix
        self.stripped = 0  # markers removed so far (each was formed by joined text)

    def add(self, text: str) -> str:
        """Text that is now certain to contain no marker, whatever follows."""
        buffer = self._strip(self._pending + text)
        keep = _held_back(buffer)
        self._pending = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def finish(self) -> str:
        """The held-back tail (a cut-off marker prefix is plain text)."""
        text, self._pending = self._pending, ""
        return text

    def _strip(self, text: str) -> str:
        while (match := _MARKER_RE.search(text)) is not None:
            text = text[: match.start()] + text[match.end() :]
            self.stripped += 1
        return text
