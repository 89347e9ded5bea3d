"""What a sub-agent hands back: a structured result, capped, with an explicit marker.

The orchestrator's context is the scarce resource: a child's output is cut to a head and a
tail around a marker that says how much was dropped and where the full text is kept (an
artifact), so the orchestrator knows the text is partial instead of re-delegating the work.
If the child wrapped its answer in `<result>...</result>`, only that block is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Literal, TypeAlias

from openk2.agent.llm.message import Usage

AgentState: TypeAlias = Literal["completed", "failed", "aborted"]
TRUNCATION_MARKER = "[... truncated by openk2:"
_RESULT_BLOCK = re.compile(r"<result>(.*?)</result>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class SubagentResult:
    """The final state of one sub-agent run."""

    agent_id: str
    name: str
    state: AgentState
    output: str
    steps: int
    usage: Usage = field(default_factory=Usage)
    error: str | None = None

    def render(self, max_chars: int, artifacts: ArtifactStore | None = None) -> str:
        """The `<subagent>` element the orchestrator sees, output capped at `max_chars`."""
        body = cap_text(extract_result(self.output), max_chars, artifacts, self.agent_id)
        attrs = f'agent_id="{self.agent_id}" name="{escape(self.name)}" state="{self.state}"'
        attrs += f' steps="{self.steps}"'
        parts = [f"<subagent {attrs}>"]
        if self.error:
            parts.append(f"<error>{escape(self.error)}</error>")
            parts.append(
                f'<resume_hint>call resume with {{"{self.agent_id}": "<what to do next>"}} to '
                "continue this agent with its context; do not start the work over</resume_hint>"
            )
        parts.append(body)
        parts.append("</subagent>")
        return "\n".join(parts)


def extract_result(text: str) -> str:
    """The last `<result>` block if the child used one, else the whole text."""
    blocks = _RESULT_BLOCK.findall(text)
    return blocks[-1].strip() if blocks else text


def cap_text(
    text: str, max_chars: int, artifacts: ArtifactStore | None = None, key: str = "output"
) -> str:
    """`text` if it fits, else head + marker + tail, the full text saved as an artifact."""
    if len(text) <= max_chars:
        return text
    ref = artifacts.save(key, text) if artifacts is not None else "(not kept)"
    head = max_chars * 2 // 3
    tail = max_chars - head
    dropped = len(text) - head - tail
    marker = (
        f"\n{TRUNCATION_MARKER} {dropped} of {len(text)} characters omitted; "
        f"the full output is artifact {ref}, readable with read_artifact] ...\n"
    )
    return text[:head] + marker + text[len(text) - tail :]


def render_batch(
    results: list[SubagentResult], max_chars: int, artifacts: ArtifactStore | None
) -> str:
    """The `<agent_swarm_result>` for a bulk call: summary, resume hint, one entry per agent."""
    counts = {s: sum(r.state == s for r in results) for s in ("completed", "failed", "aborted")}
    summary = ", ".join(f"{k}: {v}" for k, v in counts.items())
    each = max(max_chars // max(len(results), 1), 400)
    parts = ["<agent_swarm_result>", f"<summary>{summary}</summary>"]
    unfinished = [r.agent_id for r in results if r.state != "completed"]
    if unfinished:
        parts.append(
            f"<resume_hint>agents {', '.join(unfinished)} did not complete; call resume with "
            "their ids to continue them with their context</resume_hint>"
        )
    parts += [r.render(each, artifacts) for r in results]
    parts.append("</agent_swarm_result>")
    return "\n".join(parts)


class ArtifactStore:
    """Full outputs that were cut for the orchestrator; on disk when a directory is given."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: dict[str, str] = {}

    def save(self, key: str, text: str) -> str:
        """Keep `text` under `key`; returns the reference shown in the marker."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        if self.directory is None:
            self._memory[safe] = text
            return f"artifact://{safe}"
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{safe}.txt").write_text(text, encoding="utf-8")
        return f"artifact://{safe}"

    def load(self, ref: str) -> str | None:
        """The full text of `ref` (`artifact://KEY` or `KEY`), or None."""
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", ref.removeprefix("artifact://"))
        if key in self._memory:
            return self._memory[key]
        if self.directory is not None:
            path = self.directory / f"{key}.txt"
            if path.is_file():
                return path.read_text(encoding="utf-8")
        return None
