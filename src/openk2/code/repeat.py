"""The repeat guard: the same call, with the same arguments, over and over.

The loop's own guard stops a run after identical steps with identical results; a call whose
result changes each time (`date`, a flaky test) escapes it. This one looks only at the calls:
from the `remind_at`-th identical call in a row the result carries a reminder; from the
`refuse_at`-th the call is not run any more, its result becomes a constant error, and the
loop guard then ends the run. The arguments are compared canonically (parsed JSON, sorted
keys), so spacing or key order does not hide a repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from openk2.agent.llm.message import ToolCall


def canonical(call: ToolCall) -> str:
    """`name(arguments)` with the arguments' JSON normalised (raw text if it is not JSON)."""
    try:
        args = json.dumps(json.loads(call.arguments or "{}"), sort_keys=True)
    except json.JSONDecodeError:
        args = call.arguments
    return f"{call.name}({args})"


@dataclass(kw_only=True, slots=True)
class RepeatGuard:
    """Counts identical consecutive calls."""

    remind_at: int = 3
    refuse_at: int = 6
    _last: str | None = field(default=None, init=False)
    _count: int = field(default=0, init=False)

    def see(self, call: ToolCall) -> int:
        """Record a call; how many times in a row it has now been made."""
        key = canonical(call)
        self._count = self._count + 1 if key == self._last else 1
        self._last = key
        return self._count

    def refuse(self, count: int) -> bool:
        """Whether the call should no longer run."""
        return count >= self.refuse_at > 0

    def reminder(self, count: int) -> str | None:
        """The note added to the result once the repeats start to look like a loop."""
        if count < self.remind_at or self.remind_at <= 0:
            return None
        return (f"[repeat guard] You have made this same call with the same arguments at least "
                f"{self.remind_at} times in a row. Repeating it will not help: change the "
                "approach, or finish and report.")
