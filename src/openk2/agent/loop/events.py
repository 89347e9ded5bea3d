"""The wire: typed events that the agent loop and swarm emit and every UI consumes.

The rich progress view, the JSONL trace, OpenTelemetry spans and tests all subscribe to the
same `Wire`, so no consumer needs hooks into the loop. Emission is synchronous and costs one
list walk; with no subscriber the loop skips building per-delta events entirely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from openk2.agent.llm.message import Message, ToolCall, Usage
from openk2.agent.tools.base import ToolResult


@dataclass(frozen=True, slots=True)
class StepBegin:
    """Agent `agent_id` starts step `step` (1-based)."""

    agent_id: str
    step: int


@dataclass(frozen=True, slots=True)
class AssistantDelta:
    """A streamed fragment of the answer (`text`) or of the thinking (`reasoning`)."""

    agent_id: str
    kind: Literal["text", "reasoning"]
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool call is about to run."""

    agent_id: str
    step: int
    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool call returned (successfully or with a `ToolError`)."""

    agent_id: str
    step: int
    call: ToolCall
    result: ToolResult


@dataclass(frozen=True, slots=True)
class StepEnd:
    """A step is complete: the assistant message and its usage."""

    agent_id: str
    step: int
    message: Message
    usage: Usage


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """The agent loop stopped; `reason` is a stop reason or an error kind."""

    agent_id: str
    reason: str
    steps: int


@dataclass(frozen=True, slots=True)
class AgentSpawned:
    """The swarm created sub-agent `agent_id` (type `name`) under `parent_id`."""

    agent_id: str
    name: str
    parent_id: str | None
    prompt: str


@dataclass(frozen=True, slots=True)
class AgentFinished:
    """A sub-agent reached a final state: completed, failed or aborted."""

    agent_id: str
    state: str
    steps: int
    usage: Usage
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A call hit HTTP 429; the scheduler's concurrency `limit` and pacing `rate` after it
    (requests/s, None = not pacing), and the call's own extra wait `delay`."""

    agent_id: str
    provider: str
    delay: float
    limit: int
    rate: float | None = None


Event: TypeAlias = (
    StepBegin
    | AssistantDelta
    | ToolCallStarted
    | ToolCallFinished
    | StepEnd
    | TurnEnd
    | AgentSpawned
    | AgentFinished
    | RateLimited
)
Subscriber: TypeAlias = Callable[[Event], None]


class Wire:
    """Synchronous fan-out of events to subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    @property
    def active(self) -> bool:
        """Whether anyone listens (lets emitters skip building events)."""
        return bool(self._subscribers)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def emit(self, event: Event) -> None:
        """Deliver `event` to every subscriber, in subscription order."""
        for fn in self._subscribers:
            fn(event)

    def queue(self) -> asyncio.Queue[Event]:
        """A subscriber queue for async consumers (unbounded: the loop never blocks on a UI)."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        self.subscribe(q.put_nowait)
        return q
