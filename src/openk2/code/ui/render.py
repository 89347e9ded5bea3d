"""Rich rendering of session events, and the approval question asked before a risky call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape

from openk2.agent.guard import Answer, ApprovalRequest, unmark

Ask = Callable[[str], Awaitable[str]]
"""Reads one line of the user's answer after showing a question."""


class Renderer:
    """Turns session events into terminal output (the `emit` of an interactive session)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._streamed = False
        """Whether the current message's text was already shown as it streamed."""
        self._live: Live | None = None
        self._text = ""

    def __call__(self, event: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{event['type']}", None)
        if handler is not None:
            handler(event)

    def _on_delta(self, e: dict[str, Any]) -> None:
        """Streamed answer text, re-rendered as Markdown while it grows."""
        self._text += e["text"]
        if self._live is None:
            self._live = Live(console=self.console, refresh_per_second=8, transient=False)
            self._live.start()
        self._live.update(Markdown(self._text))
        self._streamed = True

    def _end_stream(self) -> None:
        if self._live is not None:
            self._live.stop()
        self._live, self._text = None, ""

    def _on_assistant(self, e: dict[str, Any]) -> None:
        self._end_stream()
        if not self._streamed and e["text"].strip() and e["tool_calls"]:
            self.console.print(Markdown(e["text"]))
        self._streamed = self._streamed and not e["tool_calls"]
        for c in e["tool_calls"]:
            args = escape(c["arguments"][:160])
            self.console.print(f"[cyan]> {escape(c['name'])}[/] [dim]{args}[/]")

    def _on_tool_result(self, e: dict[str, Any]) -> None:
        style = "green" if e["ok"] else "red"
        shown = unmark(e["output"]).splitlines() or [""]
        brief = e["brief"] or ("ok" if e["ok"] else shown[0][:160])
        self.console.print(f"  [{style}]{escape(brief)}[/]")

    def _on_verdict(self, e: dict[str, Any]) -> None:
        if e["decision"] != "allow":
            what, why = escape(e["action"]), escape(e["reason"])
            self.console.print(f"  [bold red]denied[/] {what}: {why}")

    def _on_compaction(self, e: dict[str, Any]) -> None:
        self.console.print(f"[dim]context compacted: {e['tokens_before']} -> "
                           f"{e['tokens_after']} tokens[/]")

    def _on_interrupted(self, e: dict[str, Any]) -> None:
        self._end_stream()
        self._streamed = False

    def _on_result(self, e: dict[str, Any]) -> None:
        self._end_stream()
        if e["result"].strip() and not self._streamed:
            self.console.print(Markdown(e["result"]))
        self._streamed = False
        if e["status"] not in ("completed", "denied"):
            self.console.print(f"[yellow]run ended: {e['status']} ({escape(e['error'] or '')})[/]")


def asker(console: Console, ask: Ask) -> Callable[[ApprovalRequest], Awaitable[Answer]]:
    """The guard's `Asker` for a terminal: approve once, approve a prefix, or reject."""

    async def approve(request: ApprovalRequest) -> Answer:
        d = request.decision
        rule = escape(f"[{d.rule}]")
        console.print(f"[bold yellow]approve?[/] {escape(request.tool)}: {escape(request.summary)}"
                      f"\n  [dim]{escape(d.reason)} {rule}[/]")
        options = "[y]es once"
        if request.prefixes:
            shown = ", ".join(" ".join(p) for p in request.prefixes)
            options += f", [p] always allow `{shown}` in this project"
        reply = (await ask(f"{options}, [n]o (or type feedback): ")).strip()
        if reply.lower() in ("y", "yes"):
            return Answer("approve")
        if reply.lower() == "p" and request.prefixes:
            return Answer("approve_prefix")
        feedback = "" if reply.lower() in ("", "n", "no") else reply
        return Answer("reject", feedback)

    return approve
