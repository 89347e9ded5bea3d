"""Pieces of tool-call parsing: streamed JSON arguments, held text, per-call state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openk2.tokenizer.parse.markers import Event
from openk2.tokenizer.parse.tools import CallName


def json_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """(parsed object, None) or (None, why `text` is not a JSON object)."""
    try:
        value = json.loads(text)
    except ValueError as e:
        return None, f"arguments are not valid JSON: {e}"
    if not isinstance(value, dict):
        return None, "arguments must be a JSON object"
    return value, None

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
    """The tool call being parsed: raw text (for errors), id text, start, stream index."""

    raw: str = ""
    id_text: str = ""
    position: int = 0
    index: int = -1
    """Stream index once the call's start delta went out; -1 before."""
    resolved: CallName | None = None
    deferred: bool = False
    """The id names no tool: the name is inferred from the arguments at the call's end."""
    discard: bool = False
    """Tools are disabled for this request: the call is parsed only to be dropped."""
    args: ArgumentStream = field(default_factory=ArgumentStream)
    emitted: int = 0
    """Characters of `args.text` already streamed."""
    replay: list[Event] | None = None
    """Events since a structural marker inside a JSON string (None: no such marker)."""
    cut: int = 0
    """Length of `args.text` before that marker, where a roll-back ends the arguments."""
    raw_cut: int = 0
