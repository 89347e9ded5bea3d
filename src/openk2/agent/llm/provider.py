"""The provider protocol: how the agent reaches any model, plus its error hierarchy.

A provider turns (messages, tools, settings) into a stream of deltas. Implementations only
have to yield `StreamPart`s; `StreamedMessage` assembles them into a `Completion` (tool-call
argument fragments joined by index, usage and finish reason kept), so every provider gets the
same accumulation logic and every consumer can either watch deltas or just `await collect()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

from openk2.agent.llm.message import Completion, Message, ToolCall, ToolSpec, Usage
from openk2.agent.llm.ratelimits import RateLimitInfo


@dataclass(kw_only=True, slots=True)
class GenerationSettings:
    """Per-call sampling options; `None` leaves the server's default."""

    temperature: float | None = None
    """Sampling temperature."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    max_tokens: int | None = None
    """Upper bound on completion tokens (the swarm sets it from the remaining token budget)."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Server-specific request fields merged into the body (e.g. `chat_template_kwargs`)."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the visible answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of `reasoning_content` (thinking)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of tool call number `index`; `id`/`name` arrive once, arguments in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """Token usage of the whole call (sent once, usually last)."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class FinishDelta:
    """Why the model stopped (`stop`, `tool_calls`, `length`, ...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class RateLimitDelta:
    """The server's rate-limit state from the response headers (sent first, if at all).

    Not part of the message: `StreamedMessage` ignores it; the swarm's scheduler reads it to
    pace its calls before the server has to refuse one.
    """

    info: RateLimitInfo


StreamPart: TypeAlias = (
    TextDelta | ReasoningDelta | ToolCallDelta | UsageDelta | FinishDelta | RateLimitDelta
)


@runtime_checkable
class ChatProvider(Protocol):
    """Anything that can answer a chat: HTTP, scripted, or openk2's in-process engine."""

    @property
    def model_name(self) -> str:
        """The model id used in logs and cost accounting."""
        ...

    def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        settings: GenerationSettings | None = None,
    ) -> StreamedMessage:
        """Start one call; nothing is sent until the result is iterated or collected."""
        ...


class StreamedMessage:
    """An in-progress assistant message: iterate for deltas, or `await collect()`.

    Iterating yields every `StreamPart` and accumulates it; `collect()` drains what is left and
    returns the `Completion`. A stream can be consumed only once.
    """

    def __init__(self, parts: AsyncIterator[StreamPart], model: str = "") -> None:
        self._parts = parts
        self._model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[Any]] = {}
        self._usage = Usage()
        self._finish: str | None = None
        self._done = False

    def __aiter__(self) -> AsyncIterator[StreamPart]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamPart]:
        if self._done:
            raise RuntimeError("a StreamedMessage can be consumed only once")
        self._done = True
        async for part in self._parts:
            self._accumulate(part)
            yield part

    async def collect(self) -> Completion:
        """Drain the stream (if not yet drained) and return the assembled completion."""
        if not self._done:
            self._done = True
            accumulate = self._accumulate
            async for part in self._parts:
                accumulate(part)
        return self.completion()

    def raw(self) -> AsyncIterator[StreamPart]:
        """The parts without accumulation, for wrappers that re-stream them (consumes)."""
        if self._done:
            raise RuntimeError("a StreamedMessage can be consumed only once")
        self._done = True
        return self._parts

    def _accumulate(self, part: StreamPart) -> None:
        if isinstance(part, TextDelta):
            self._text.append(part.text)
        elif isinstance(part, ReasoningDelta):
            self._reasoning.append(part.text)
        elif isinstance(part, ToolCallDelta):
            slot = self._calls.setdefault(part.index, [None, None, []])
            slot[0] = part.id or slot[0]
            slot[1] = part.name or slot[1]
            slot[2].append(part.arguments)
        elif isinstance(part, UsageDelta):
            self._usage = part.usage
        elif isinstance(part, FinishDelta):
            self._finish = part.reason

    def completion(self) -> Completion:
        """The completion assembled from the parts seen so far."""
        calls = tuple(
            ToolCall(id=cid or f"call_{i}", name=name or "", arguments="".join(args))
            for i, (cid, name, args) in sorted(self._calls.items())
        )
        reasoning = "".join(self._reasoning) if self._reasoning else None
        message = Message(
            role="assistant",
            content="".join(self._text),
            reasoning_content=reasoning,
            tool_calls=calls,
        )
        return Completion(message, self._usage, self._finish, self._model)


class ProviderError(Exception):
    """A model call failed for a transport or server reason (never a bug in the agent)."""

    retryable: bool = False


class ProviderTimeoutError(ProviderError):
    """The server did not answer (or stopped streaming) within the timeout."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The connection could not be made or broke."""

    retryable = True


class ProviderStatusError(ProviderError):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, body: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.retryable = status in (408, 409, 429) or status >= 500


class RateLimitError(ProviderStatusError):
    """HTTP 429; `retry_after` is the server's hint in seconds, `limits` its headers' state."""

    def __init__(
        self,
        body: str = "rate limited",
        retry_after: float | None = None,
        limits: RateLimitInfo | None = None,
    ) -> None:
        super().__init__(429, body, retry_after)
        self.limits = limits


class ProviderResponseError(ProviderError):
    """The server answered 200 but with something that is not a valid completion."""
