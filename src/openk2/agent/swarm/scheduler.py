"""Concurrency control for model calls: AIMD on HTTP 429, re-driving the same agent.

There is no superstep barrier: every agent runs its own loop and only waits for a call slot.
Each provider gets an `AdaptiveLimiter` (additive increase, multiplicative decrease, like
TCP): a 429 halves the provider's concurrency (at most once per cooldown), every `limit`
successful calls add one slot back. The call that got the 429 backs off (`Retry-After` when
the server sends it, else exponential with jitter) and is then re-queued at the *front*, so
the same agent continues with its context intact instead of restarting. A shared semaphore
caps calls in flight across all providers.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from openk2.agent.llm.message import Message, ToolSpec
from openk2.agent.llm.provider import (
    ChatProvider,
    GenerationSettings,
    RateLimitError,
    StreamedMessage,
    StreamPart,
)
from openk2.agent.loop.events import RateLimited, Wire

current_agent: ContextVar[str] = ContextVar("openk2_current_agent", default="?")
"""The agent on whose behalf the current task calls the model (for events and logs)."""


class AdaptiveLimiter:
    """A FIFO counting limiter whose limit moves with AIMD."""

    def __init__(
        self,
        max_limit: int,
        *,
        initial: int | None = None,
        min_limit: int = 1,
        decrease: float = 0.5,
        cooldown_s: float = 0.25,
    ) -> None:
        if max_limit < 1 or not 0 < decrease < 1:
            raise ValueError("max_limit must be >= 1 and 0 < decrease < 1")
        self.max_limit = max_limit
        self.min_limit = min(min_limit, max_limit)
        self.limit = min(initial or max_limit, max_limit)
        self.decrease = decrease
        self.cooldown_s = cooldown_s
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._successes = 0
        self._last_cut = -float("inf")

    async def acquire(self, *, front: bool = False) -> None:
        """Wait for a slot; `front` puts a retried call ahead of new ones."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if front:
            self._waiters.appendleft(fut)
        else:
            self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed to us just before cancellation
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        """Return a slot and wake waiters that now fit."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        """Additive increase: one slot back per `limit` successful calls."""
        if self.limit >= self.max_limit:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()

    def on_rate_limit(self) -> bool:
        """Multiplicative decrease (once per cooldown); True if the limit was cut."""
        now = time.monotonic()
        if now - self._last_cut < self.cooldown_s:
            return False
        self._last_cut = now
        self._successes = 0
        self.limit = max(self.min_limit, int(self.limit * self.decrease))
        return True


@dataclass(kw_only=True, slots=True)
class BackoffPolicy:
    """Per-call backoff after a 429 when the server gives no `Retry-After`."""

    base_s: float = 1.0
    """First wait; doubles per consecutive 429 of the same call."""
    max_s: float = 60.0
    """Cap on one wait (also on `Retry-After`)."""
    max_retries: int = 12
    """429s one call may absorb before the error reaches the agent."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before re-driving the call.

        The exponential backoff of this call's consecutive 429s, with jitter so that calls
        refused together do not come back together; a server's `Retry-After` is a lower bound
        (it is exact for one client, too short for hundreds waiting on the same quota).
        """
        backoff = min(self.base_s * 2 ** (attempt - 1), self.max_s) * random.uniform(0.5, 1.0)
        if retry_after is None:
            return backoff
        return min(max(retry_after, backoff), self.max_s)


class ScheduledProvider:
    """Wraps a provider with a concurrency slot per call and 429 handling (see module doc)."""

    def __init__(
        self,
        inner: ChatProvider,
        limiter: AdaptiveLimiter,
        *,
        global_slots: asyncio.Semaphore | None = None,
        backoff: BackoffPolicy | None = None,
        wire: Wire | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.global_slots = global_slots
        self.backoff = backoff or BackoffPolicy()
        self.wire = wire
        self.rate_limited = 0
        self._sleep = sleep

    @property
    def model_name(self) -> str:
        """The wrapped provider's model."""
        return self.inner.model_name

    def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        settings: GenerationSettings | None = None,
    ) -> StreamedMessage:
        """A stream that waits for a slot and survives 429s before its first delta."""
        return StreamedMessage(self._parts(messages, tools, settings), self.inner.model_name)

    async def _parts(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings | None,
    ) -> AsyncIterator[StreamPart]:
        attempt = 0
        while True:
            yielded = False
            try:
                await self._acquire(front=attempt > 0)
                try:
                    async for part in self.inner.generate(messages, tools, settings).raw():
                        yielded = True
                        yield part
                finally:
                    self._release()
                self.limiter.on_success()
                return
            except RateLimitError as exc:
                attempt += 1
                if yielded or attempt > self.backoff.max_retries:
                    raise
                await self._back_off(attempt, exc.retry_after)

    async def _acquire(self, *, front: bool) -> None:
        if self.global_slots is not None:
            await self.global_slots.acquire()
        try:
            await self.limiter.acquire(front=front)
        except BaseException:
            if self.global_slots is not None:
                self.global_slots.release()
            raise

    def _release(self) -> None:
        self.limiter.release()
        if self.global_slots is not None:
            self.global_slots.release()

    async def _back_off(self, attempt: int, retry_after: float | None) -> None:
        self.rate_limited += 1
        self.limiter.on_rate_limit()
        delay = self.backoff.delay(attempt, retry_after)
        if self.wire is not None and self.wire.active:
            event = RateLimited(current_agent.get(), self.inner.model_name, delay,
                                self.limiter.limit)
            self.wire.emit(event)
        await self._sleep(delay)
