"""How a headless run reports: `text`, `json` (one summary object) or `stream-json`.

stream-json prints every session event as one JSON object per line, each carrying the schema
version `v`, ending with the `result` event that `json` prints alone. `text` prints the final
answer on stdout and a one-line trace of tool calls and denials on stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal, TextIO, TypeAlias

from openk2.code.app import Emit, RunSummary

OutputFormat: TypeAlias = Literal["text", "json", "stream-json"]
FORMATS: tuple[OutputFormat, ...] = ("text", "json", "stream-json")


class Reporter:
    """Prints events as they come (`emit`) and the outcome at the end (`finish`)."""

    def __init__(self, fmt: OutputFormat, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    @property
    def emit(self) -> Emit | None:
        """The event callback for the session (None when nothing is printed live)."""
        return {"stream-json": self._line, "text": self._trace}.get(self.fmt)

    def _line(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.out.flush()

    def _trace(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "assistant":
            for c in event["tool_calls"]:
                self._err(f"> {c['name']} {c['arguments'][:120]}")
        elif kind == "verdict" and event["decision"] != "allow":
            self._err(f"! denied: {event['action']}: {event['reason']}")
        elif kind == "compaction":
            self._err(f"~ context compacted: {event['tokens_before']} -> "
                      f"{event['tokens_after']} tokens")

    def _err(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def finish(self, summary: RunSummary) -> None:
        """Print the outcome in the chosen format."""
        if self.fmt == "json":
            self._line(summary.to_dict())
        elif self.fmt == "text":
            if summary.result:
                self.out.write(summary.result.rstrip() + "\n")
                self.out.flush()
            if summary.status != "completed":
                why = summary.error or f"{len(summary.denied)} call(s) denied"
                self._err(f"openk2 code: run ended: {summary.status} ({why}); "
                          f"session {summary.session_id}")
