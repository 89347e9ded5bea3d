"""The prompt the interactive shell reads from: history, multi-line paste and typing.

prompt_toolkit's bracketed paste already inserts a pasted block with its newlines (Enter then
sends the whole of it); for typing, Esc Enter (Alt+Enter in most terminals) inserts a newline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings


def prompt_session(history: Path, **io: Any) -> PromptSession[str]:
    """A prompt with its history in `history`; `io` (input=, output=) is for tests."""
    history.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(history=FileHistory(str(history)), key_bindings=newline_keys(), **io)


def newline_keys() -> KeyBindings:
    """Esc Enter / Alt+Enter insert a newline instead of sending."""
    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return keys
