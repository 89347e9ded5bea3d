"""One agent step: one LLM call, then every requested tool call run concurrently.

Tool calls of one step run in a `TaskGroup`: they overlap (several `assign_task` calls in one
turn run their sub-agents in parallel), and an unexpected exception in one cancels the rest
and propagates, because it is a bug rather than a model mistake (model mistakes are already
`ToolError` values).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from openk2.agent.llm.message import Completion, Message, ToolCall, tool_result
from openk2.agent.llm.provider import (
    ChatProvider,
    GenerationSettings,
    ReasoningDelta,
    TextDelta,
)
from openk2.agent.loop.events import AssistantDelta, ToolCallFinished, ToolCallStarted, Wire
from openk2.agent.tools.base import ToolResult, Toolset

ToolDone = Callable[[ToolCall, ToolResult], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolCallContext:
    """Which agent, step and call a running tool serves (for idempotency keys and logs)."""

    agent_id: str
    step: int
    call: ToolCall


current_tool_call: ContextVar[ToolCallContext | None] = ContextVar(
    "openk2_current_tool_call", default=None
)
"""Set by `run_tools` around each dispatch; each concurrent call sees its own value."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step produced: the assistant message and one result per tool call."""

    completion: Completion
    results: tuple[ToolResult, ...]

    @property
    def message(self) -> Message:
        """The assistant message of this step."""
        return self.completion.message

    def tool_messages(self) -> list[Message]:
        """The `tool` messages that answer this step's calls, in call order."""
        calls = self.completion.message.tool_calls
        return [tool_result(c.id, r.output) for c, r in zip(calls, self.results, strict=True)]


async def call_llm(
    provider: ChatProvider,
    history: Sequence[Message],
    toolset: Toolset,
    settings: GenerationSettings | None,
    wire: Wire | None,
    agent_id: str,
) -> Completion:
    """Run the LLM call, streaming deltas onto the wire when someone listens."""
    stream = provider.generate(history, toolset.specs(), settings)
    if wire is None or not wire.active:
        return await stream.collect()
    async for part in stream:
        if isinstance(part, TextDelta):
            wire.emit(AssistantDelta(agent_id, "text", part.text))
        elif isinstance(part, ReasoningDelta):
            wire.emit(AssistantDelta(agent_id, "reasoning", part.text))
    return stream.completion()


async def run_tools(
    toolset: Toolset,
    calls: Sequence[ToolCall],
    *,
    step: int,
    agent_id: str,
    wire: Wire | None = None,
    done: Mapping[str, ToolResult] | None = None,
    on_result: ToolDone | None = None,
) -> tuple[ToolResult, ...]:
    """Run `calls` concurrently; results already in `done` (by call id) are reused."""
    done = done or {}
    results: list[ToolResult | None] = [done.get(c.id) for c in calls]

    async def one(i: int, call: ToolCall) -> None:
        if wire is not None and wire.active:
            wire.emit(ToolCallStarted(agent_id, step, call))
        token = current_tool_call.set(ToolCallContext(agent_id, step, call))
        try:
            result = await toolset.dispatch(call)
        finally:
            current_tool_call.reset(token)
        results[i] = result
        if on_result is not None:
            await on_result(call, result)
        if wire is not None and wire.active:
            wire.emit(ToolCallFinished(agent_id, step, call, result))

    todo = [(i, c) for i, c in enumerate(calls) if results[i] is None]
    if len(todo) == 1:
        await one(*todo[0])
    elif todo:
        try:
            async with asyncio.TaskGroup() as group:
                for i, c in todo:
                    group.create_task(one(i, c))
        except ExceptionGroup as eg:
            raise eg.exceptions[0] from eg
    return tuple(r for r in results if r is not None)
