"""What every coding tool shares: its `.md` description, its gate action, its dependencies."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeAlias

from pydantic import BaseModel

from openk2.agent.tools.base import ParamsT, Tool
from openk2.code.gate import Action

MAX_OUTPUT_CHARS = 50_000
"""Longest tool output handed to the model; the rest is cut with a note saying so."""


def description(module_file: str, name: str) -> str:
    """The text of the `.md` beside a tool's `__init__.py` (the model's tool description)."""
    return (Path(module_file).parent / f"{name}.md").read_text(encoding="utf-8").strip()


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """`text` cut to `limit` characters, with a note the model can act on."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[output truncated: {len(text) - limit} more characters]"


class CodeTool(Tool[ParamsT]):
    """A tool that tells the gate what a validated call would do."""

    @abstractmethod
    def action(self, params: ParamsT) -> Action:
        """The gate's view of the call (resolved paths, the command)."""


class ShellLauncher(Protocol):
    """Turns a shell command into the argv that runs it (sandboxed or not)."""

    def argv(self, command: str, cwd: Path) -> list[str]:
        """The process to start for `command`, whose working directory is `cwd`."""
        ...

    def env(self) -> dict[str, str]:
        """The environment the command gets (the sandbox scrubs secrets from it)."""
        ...

    @property
    def sandboxed(self) -> bool:
        """Whether commands run inside an OS sandbox."""
        ...

    def close(self) -> None:
        """Release what the launcher holds (the sandbox's network proxy)."""
        ...


TodoStatus: TypeAlias = Literal["pending", "in_progress", "done"]


class Todo(BaseModel):
    """One item of the agent's todo list."""

    title: str
    status: TodoStatus = "pending"


@dataclass(slots=True)
class TodoBoard:
    """The session's todo list (saved in the session log with every change)."""

    items: list[Todo] = field(default_factory=list)
