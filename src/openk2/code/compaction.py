"""Context compaction: past ~85% of the window, older steps become one summary message.

The size is the larger of two counts: the server's own prompt + completion tokens of the last
call (exact for everything up to that answer) and a count of the whole history (with the
model's tokenizer when known, else ~4 characters per token). The last `keep_steps` steps
stay verbatim, the cut never separates a tool call from its result, and the first user task
is quoted in the summary so the goal is never paraphrased away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openk2.agent.llm.message import Message, Usage, system, user
from openk2.agent.llm.provider import ChatProvider, GenerationSettings

SUMMARY_PROMPT = """\
Summarise the conversation above so that the work can continue from the summary alone. Keep:
the user's goal and constraints; decisions made and why; files read, created or changed (with
paths); commands run and their important results; errors met and how they were handled; what
remains to be done next. Be concrete and brief; do not call tools."""

TokenCount = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """~4 characters per token: the fallback when the model's tokenizer is not known."""
    return len(text) // 4 + 1


def message_tokens(messages: Sequence[Message], count: TokenCount) -> int:
    """Tokens of a history: contents, reasoning and tool-call arguments, plus framing."""
    total = 0
    for m in messages:
        total += 4 + count(m.content) if m.content else 4
        if m.reasoning_content:
            total += count(m.reasoning_content)
        for c in m.tool_calls:
            total += count(c.name + c.arguments) + 4
    return total


@dataclass(kw_only=True, slots=True)
class Compactor:
    """Decides when to compact and does it with one summarising call to the same model."""

    window: int
    """The model's context window in tokens."""
    ratio: float = 0.85
    """Compact once the context passes this share of the window."""
    keep_steps: int = 2
    """Most recent assistant steps (with their tool results) kept verbatim."""
    count: TokenCount = approx_tokens

    def size(self, history: Sequence[Message], last_usage: Usage | None) -> int:
        """The context size the next call would send."""
        counted = message_tokens(history, self.count)
        reported = last_usage.total_tokens if last_usage else 0
        return max(counted, reported)

    def needed(self, history: Sequence[Message], last_usage: Usage | None) -> bool:
        """Whether the next call should go out compacted."""
        return self.size(history, last_usage) > self.ratio * self.window

    async def compact(self, provider: ChatProvider, history: Sequence[Message]) -> list[Message]:
        """`[system, user(task + summary), <last steps>]`; unchanged when nothing can go."""
        cut = cut_index(history, self.keep_steps)
        if cut is None:
            return list(history)
        head = [m for m in history[:cut] if m.role != "system"]
        summary = await self._summarise(provider, head)
        task = next((m.content for m in head if m.role == "user"), "")
        note = (f"The earlier part of this session was compacted.\nThe task was:\n{task}\n\n"
                f"Summary of the work so far:\n{summary}")
        systems = [m for m in history[:cut] if m.role == "system"]
        return [*systems, user(note), *history[cut:]]

    async def _summarise(self, provider: ChatProvider, head: Sequence[Message]) -> str:
        transcript = "\n".join(_line(m) for m in head)
        messages = [system("You write faithful, compact summaries of coding sessions."),
                    user(f"{transcript}\n\n{SUMMARY_PROMPT}")]
        done = await provider.generate(messages, (), GenerationSettings()).collect()
        return done.message.content.strip() or "(no summary was produced)"


def cut_index(history: Sequence[Message], keep_steps: int) -> int | None:
    """Start of the kept tail: the `keep_steps`-th last assistant message (never a tool one)."""
    starts = [i for i, m in enumerate(history) if m.role == "assistant"]
    if len(starts) <= keep_steps:
        return None
    cut = starts[-keep_steps] if keep_steps else len(history)
    first_real = next((i for i, m in enumerate(history) if m.role != "system"), len(history))
    return cut if cut > first_real else None


def _line(m: Message) -> str:
    calls = "".join(f"\n  -> {c.name}({c.arguments[:500]})" for c in m.tool_calls)
    text = m.content if len(m.content) <= 4000 else m.content[:4000] + " [...]"
    return f"[{m.role}] {text}{calls}" if m.role != "tool" else f"[tool result] {text}"

