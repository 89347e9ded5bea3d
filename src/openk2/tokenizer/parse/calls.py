"""Pieces of tool-call parsing: K2 call ids, streamed JSON arguments, per-call state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from openk2.tokenizer.parse.markers import Event

_ID_RE = re.compile(r"(?P<name>[^\s<>]+):(?P<index>\d+)")
_FUNCTIONS_PREFIX = "functions."


def parse_tool_call_id(raw_id: str) -> tuple[str, str] | None:
    """`functions.get_weather:0` -> (id, name); None if it is not a K2 tool-call id."""
    call_id = raw_id.strip()
    match = _ID_RE.fullmatch(call_id)
    if match is None:
        return None
    name = match["name"].removeprefix(_FUNCTIONS_PREFIX)
    return (call_id, name) if name else None


class ArgumentStream:
    """Streams a call's JSON arguments: strips outer whitespace, tracks JSON string state."""

    __slots__ = ("in_string", "pending_space", "started", "text", "_escape")

    def __init__(self) -> None:
        self.text = ""  # everything emitted so far
        self.pending_space = ""  # whitespace that is trailing unless more text follows
        self.started = False
        self.in_string = False
        self._escape = False

    def add(self, chunk: str) -> str:
        """Feed raw argument text; return the fragment that is now certain."""
        out = []
        for ch in chunk:
            if not self.in_string and ch.isspace():
                if self.started:
                    self.pending_space += ch
                continue
            self.started = True
            out.append(self.pending_space + ch)
            self.pending_space = ""
            self._track_string(ch)
        fragment = "".join(out)
        self.text += fragment
        return fragment

    def _track_string(self, ch: str) -> None:
        if not self.in_string:
            self.in_string = ch == '"'
        elif self._escape:
            self._escape = False
        elif ch == "\\":
            self._escape = True
        elif ch == '"':
            self.in_string = False


@dataclass(slots=True)
class Held:
    """Text kept aside until the next marker, with where it started."""

    text: str = ""
    position: int = 0

    def add(self, event: Event) -> None:
        if not self.text:
            self.position = event.position
        self.text += event.text

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


@dataclass(slots=True)
class CallState:
    """The tool call being parsed: its raw text (for errors), id text, start and stream index."""

    raw: str = ""
    id_text: str = ""
    position: int = 0
    index: int = -1
    args: ArgumentStream = field(default_factory=ArgumentStream)
