"""The interactive loop: read a line, run the agent on it, render; slash commands between.

The same `CodeSession` as headless runs, with a terminal asker: calls that need approval are
asked here (approve once, approve a command prefix for the project, or reject with feedback
for the model). `/undo` takes back the last turn: the files go back to the snapshot taken
before its first change, and the conversation to before its user message (logged as a
`rewind` record, so a resume sees the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from openk2.agent.llm.message import Usage
from openk2.code.app import CodeSession
from openk2.code.config import CodeSettings
from openk2.code.sessions import SessionStore
from openk2.code.ui import commands
from openk2.code.ui.status import apply_settings, status_line

ASYNC_COMMANDS = {"/compact": commands.compact, "/sessions": commands.sessions,
                  "/model": commands.model, "/approvals": commands.approvals}

HELP = """\
/help            this list
/clear           start a new session (the old one stays resumable)
/cost            tokens, context use and cost of this session so far
/mode [MODE]     show or set the approval mode: manual, auto or yolo
/thinking [on|off]  show or set thinking for the next calls
/undo            undo the last turn: files and conversation back to before it
/compact         summarise the older steps now, to free context
/sessions        this workspace's sessions (ids for --resume)
/model [NAME]    show or switch the model
/approvals [remove N]  list or withdraw this project's approved command prefixes
/exit            leave (Ctrl-D works too)
Esc then Enter (or Alt+Enter) starts a new line; pasted text keeps its lines."""


@dataclass(slots=True)
class ShellState:
    """What the slash commands act on; `new_session` builds a fresh session on /clear."""

    session: CodeSession
    new_session: Callable[[], CodeSession]
    tokens: int = 0
    store: SessionStore | None = None
    workspace: Path | None = None
    settings: CodeSettings | None = None
    """The run's settings (model tables, price, thinking); None in tests that need none."""
    usage: Usage = field(default_factory=Usage)
    """Tokens of this session's turns so far (status line, /cost)."""
    turns: list[int] = field(default_factory=list)
    """For each turn of this shell: how many snapshots the gate had taken when it began."""


class InteractiveShell:
    """Reads prompts with `read_line` (prompt_toolkit in the CLI, a script in tests)."""

    def __init__(self, state: ShellState, console: Console,
                 read_line: Callable[[str], Awaitable[str]]) -> None:
        self.state = state
        self.console = console
        self.read_line = read_line

    async def run(self) -> None:
        """Until /exit or end of input."""
        self.console.print(f"[bold]openk2 code[/] session {self.state.session.log.id} - "
                           "/help for commands")
        self._status()
        while True:
            try:
                line = (await self.read_line("> ")).strip()
            except (EOFError, KeyboardInterrupt):
                break
            if not line:
                continue
            if line.startswith("/"):
                if not await self.command(line):
                    break
                continue
            await self.turn(line)
            self._status()

    def _status(self) -> None:
        self.console.print(f"[dim]{status_line(self.state)}[/]", highlight=False)

    async def turn(self, text: str) -> None:
        """One user message and the agent's work on it; Ctrl-C stops the work, not the shell."""
        self.state.turns.append(len(getattr(self.state.session.parts.toolset.gate,
                                            "snapshot_ids", [])))
        self.state.session.add_user(text)
        task = asyncio.ensure_future(self.state.session.run())
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            summary = await task
        except asyncio.CancelledError:
            self.state.session.recover()
            self.console.print("[yellow]interrupted[/] (unfinished calls are marked as such)")
            return
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
        self.state.tokens += summary.usage.total_tokens
        self.state.usage = self.state.usage + summary.usage

    async def command(self, line: str) -> bool:
        """Run a slash command; False means leave."""
        name, _, arg = line.partition(" ")
        handler = {"/help": self._help, "/clear": self._clear, "/cost": self._cost,
                   "/mode": self._mode, "/undo": self._undo,
                   "/thinking": self._thinking}.get(name)
        if name in ("/exit", "/quit"):
            return False
        if name in ASYNC_COMMANDS:
            await ASYNC_COMMANDS[name](self.state, self.console, arg.strip())
        elif handler is None:
            self.console.print(f"unknown command {name}; /help lists them")
        else:
            handler(arg.strip())
        return True

    def _help(self, _: str) -> None:
        self.console.print(HELP, markup=False)

    def _clear(self, _: str) -> None:
        self.state.session.log.close()
        self.state.session = self.state.new_session()
        self.state.tokens, self.state.usage = 0, Usage()
        if self.state.settings is not None:
            apply_settings(self.state, self.state.settings)
        self.console.print(f"new session {self.state.session.log.id}")

    def _cost(self, _: str) -> None:
        s = self.state.session
        c = s.parts.compactor
        size = c.size(s.parts.history, s.last_usage)
        u = self.state.usage
        self.console.print(f"{self.state.tokens} tokens in this session ({u.prompt_tokens} "
                           f"prompt, {u.cached_tokens} of them cached, {u.completion_tokens} "
                           f"completion; {s.tool_calls} tool calls); context {size} of "
                           f"{c.window} tokens ({size / c.window:.0%})")
        cost = self.state.settings.cost(u) if self.state.settings is not None else None
        self.console.print(f"cost: ${cost:.4f}" if cost is not None else
                           "cost: not known (set `price` for this model in code.toml)")

    def _thinking(self, arg: str) -> None:
        settings = self.state.settings
        if settings is None:
            self.console.print("this session has no settings to change")
            return
        if arg:
            if arg not in ("on", "off"):
                self.console.print("usage: /thinking on|off")
                return
            apply_settings(self.state, dataclasses.replace(settings, thinking=arg == "on"))
            self.state.session.log.append("thinking", thinking=arg == "on")
        now = self.state.settings.thinking if self.state.settings else None
        self.console.print(f"thinking: {'the endpoint default' if now is None else now}")

    def _mode(self, arg: str) -> None:
        policy = self.state.session.parts.toolset.gate.gate.policy  # type: ignore[attr-defined]
        if arg:
            if arg not in ("manual", "auto", "yolo"):
                self.console.print("mode must be manual, auto or yolo")
                return
            policy.mode = arg
            self.state.session.log.append("mode", mode=arg)
        self.console.print(f"mode: {policy.mode}")

    def _undo(self, _: str) -> None:
        """The last turn taken back: its first snapshot restored, the conversation cut."""
        session = self.state.session
        history = session.parts.history
        cut = next((i for i in range(len(history) - 1, -1, -1) if history[i].role == "user"),
                   None)
        if not self.state.turns or cut is None:
            self.console.print("nothing to undo in this session")
            return
        first = self.state.turns.pop()
        restored = self._restore_turn(first)
        prompt = (str(history[cut].content or "").splitlines() or [""])[0][:60]
        history[:] = history[:cut]
        session.last_usage = None
        session.log.append("rewind", snapshot=restored, messages=[m.to_openai() for m in history])
        files = f"files restored to snapshot {restored[:12]}" if restored else "no file changed"
        self.console.print(f"undid the turn {prompt!r}: {files}; the conversation is back to "
                           "before it")

    def _restore_turn(self, first: int) -> str | None:
        """Restore the snapshot taken before the turn's first change, if it made one."""
        gate = self.state.session.parts.toolset.gate
        ids: list[str] = getattr(gate, "snapshot_ids", [])
        store = getattr(gate, "snapshots", None)
        if store is None or len(ids) <= first:
            return None
        target = ids[first]
        del ids[first:]
        store.restore(target)
        return target
