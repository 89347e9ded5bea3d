"""A provider that replays a script: for tests, benchmarks and offline demos.

A script is either a list of steps consumed in call order, or a function of the call (its
messages and tools) that returns the next step; the function form lets concurrent sub-agents
share one provider and still each get their own answers. A step is a `Reply` (text,
reasoning, tool calls, usage, simulated latency), an exception to raise (e.g. `RateLimitError`
to simulate HTTP 429), or `HANG` to never answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from openk2.agent.llm.message import Message, ToolCall, ToolSpec, Usage
from openk2.agent.llm.provider import (
    FinishDelta,
    GenerationSettings,
    ReasoningDelta,
    StreamedMessage,
    StreamPart,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)


class _Hang:
    """Sentinel step: the call never returns (until cancelled)."""

    def __repr__(self) -> str:
        return "HANG"


HANG: Final = _Hang()


def call(name: str, index: int = 0, /, **arguments: Any) -> ToolCall:
    """A tool call with a K2-style id (`functions.NAME:IDX`)."""
    return ToolCall(id=f"functions.{name}:{index}", name=name, arguments=json.dumps(arguments))


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted assistant turn."""

    text: str = ""
    reasoning: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage | None = None
    """`None` = synthetic counts (about 4 characters per token)."""
    delay: float = 0.0
    """Simulated latency in seconds before the first delta."""
    chunk: int = 0
    """Stream the text in pieces of this many characters (0 = one piece)."""


@dataclass(frozen=True, slots=True)
class ChatCall:
    """What a scripted provider was asked: kept in `ScriptedProvider.calls` for assertions."""

    index: int
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    settings: GenerationSettings | None


Step: TypeAlias = Reply | BaseException | _Hang
ScriptFn: TypeAlias = Callable[[ChatCall], Step | Awaitable[Step]]


class ScriptExhaustedError(RuntimeError):
    """A list script ran out of steps: the test expected fewer calls."""


class ScriptedProvider:
    """Replays `script`; records every call in `calls`."""

    def __init__(self, script: Sequence[Step] | ScriptFn, model: str = "scripted") -> None:
        self._script = script
        self._model = model
        self._next = 0
        self._parts: dict[int, tuple[Reply, list[StreamPart]]] = {}
        self.calls: list[ChatCall] = []

    @property
    def model_name(self) -> str:
        """The fake model id."""
        return self._model

    def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        settings: GenerationSettings | None = None,
    ) -> StreamedMessage:
        """Record the call and return a stream that plays the next step."""
        chat_call = ChatCall(len(self.calls), tuple(messages), tuple(tools), settings)
        self.calls.append(chat_call)
        return StreamedMessage(self._play(chat_call), self._model)

    async def _next_step(self, chat_call: ChatCall) -> Step:
        if callable(self._script):
            step = self._script(chat_call)
            return await step if hasattr(step, "__await__") else step  # type: ignore[misc]
        if self._next >= len(self._script):
            raise ScriptExhaustedError(f"script has only {len(self._script)} steps")
        self._next += 1
        return self._script[self._next - 1]

    async def _play(self, chat_call: ChatCall) -> AsyncIterator[StreamPart]:
        step = await self._next_step(chat_call)
        if isinstance(step, _Hang):
            await asyncio.Event().wait()
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, Reply)
        if step.delay > 0:
            await asyncio.sleep(step.delay)
        for part in self._parts_of(step, chat_call.messages):
            yield part

    def _parts_of(self, step: Reply, messages: Sequence[Message]) -> list[StreamPart]:
        """Parts of `step`; cached when they do not depend on the prompt (fixed usage)."""
        if step.usage is None:
            return reply_parts(step, messages)
        cached = self._parts.get(id(step))
        if cached is None or cached[0] is not step:
            cached = (step, reply_parts(step, messages))
            self._parts[id(step)] = cached
        return cached[1]


def reply_parts(reply: Reply, messages: Sequence[Message]) -> list[StreamPart]:
    """The stream parts a server would send for `reply`."""
    parts: list[StreamPart] = []
    if reply.reasoning:
        parts.append(ReasoningDelta(reply.reasoning))
    size = reply.chunk or len(reply.text) or 1
    parts.extend(TextDelta(reply.text[i : i + size]) for i in range(0, len(reply.text), size))
    for i, tc in enumerate(reply.tool_calls):
        parts.append(ToolCallDelta(index=i, id=tc.id, name=tc.name, arguments=tc.arguments))
    parts.append(FinishDelta("tool_calls" if reply.tool_calls else "stop"))
    parts.append(UsageDelta(reply.usage or synthetic_usage(reply, messages)))
    return parts


def synthetic_usage(reply: Reply, messages: Sequence[Message]) -> Usage:
    """Deterministic token counts (~4 characters per token) for a scripted reply."""
    prompt_chars = sum(len(m.content) + len(m.reasoning_content or "") for m in messages)
    out_chars = len(reply.text) + len(reply.reasoning or "")
    out_chars += sum(len(c.arguments) + len(c.name) for c in reply.tool_calls)
    return Usage(prompt_tokens=prompt_chars // 4 + 1, completion_tokens=out_chars // 4 + 1)
