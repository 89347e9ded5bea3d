"""Admission control for model calls: concurrency AIMD and rate pacing, re-driving the same agent.

There is no superstep barrier: every agent runs its own loop and only waits for its turn.
Providers limit two different things, and each gets its own controller:

- concurrency (calls in flight): an `AdaptiveLimiter` per provider, additive increase (one
  slot per `limit` successes) and, on a 429 that a concurrency cap explains, a cut to what
  the server has recently accepted;
- request rate (RPM-style token buckets): a `RatePacer` per provider (`pacing.py`) that
  learns the sustainable rate from 429s and rate-limit headers and honours `Retry-After`.

A refused call is re-queued at the *front*, so the same agent continues with its context
intact instead of restarting. A shared semaphore caps calls in flight across all providers.
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
    RateLimitDelta,
    RateLimitError,
    StreamedMessage,
    StreamPart,
)
from openk2.agent.loop.events import RateLimited, Wire
from openk2.agent.swarm.pacing import RatePacer

current_agent: ContextVar[str] = ContextVar("openk2_current_agent", default="?")
"""The agent on whose behalf the current task calls the model (for events and logs)."""


class AdaptiveLimiter:
    """A FIFO counting limiter whose limit moves with AIMD.

    `peak_window_s`: how long an accepted concurrency level counts as evidence (a level is
    remembered for one to two windows); `max_probe_every`: the longest spacing of probes
    above a cap, in multiples of `limit` successful calls.
    """

    def __init__(
        self,
        max_limit: int,
        *,
        initial: int | None = None,
        min_limit: int = 1,
        decrease: float = 0.5,
        cooldown_s: float = 0.25,
        peak_window_s: float = 5.0,
        max_probe_every: int = 64,
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
        self.peak_window_s = peak_window_s
        self.max_probe_every = max_probe_every
        self._probe_every = 1
        self._last_target = -1
        self._peak = self._peak_prev = -1
        self._peak_since = time.monotonic()

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (no waiting)."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, *, front: bool = False) -> None:
        """Wait for a slot; `front` puts a retried call ahead of new ones."""
        if self.try_acquire():
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

    def on_success(self, level: int | None = None, *, now: float | None = None) -> None:
        """Additive increase: one slot back per `limit` successful calls.

        `level` is how many other calls were at the server when this one was sent (at
        monotonic time `now`): the highest such level recently accepted is what the server
        has shown it takes.
        """
        if level is not None:
            self._note_accepted(level, time.monotonic() if now is None else now)
        if self.limit >= self.max_limit:
            return
        self._successes += 1
        if self._successes >= self.limit * self._probe_every:
            self._successes = 0
            self.limit += 1
            self._wake()

    def _note_accepted(self, level: int, now: float) -> None:
        if now - self._peak_since > self.peak_window_s:
            self._peak_prev, self._peak, self._peak_since = self._peak, -1, now
        if level > self._peak:
            self._peak = level

    @property
    def accepted_peak(self) -> int | None:
        """Most other calls in flight when a call the server accepted was sent (recently)."""
        peak = max(self._peak, self._peak_prev)
        return None if peak < 0 else peak

    def refused_by_concurrency(self, level: int) -> bool:
        """Could a 429 of a call sent at `level` be a concurrency cap? Not if the server
        recently accepted a call sent with as many others in flight."""
        peak = self.accepted_peak
        return peak is None or level > peak

    def on_rate_limit(
        self, level: int | None = None, sent_at: float | None = None, held: int = 0
    ) -> bool:
        """Decrease after a 429; True if the limit was cut.

        Given the refused call's `level`, the limit drops to what the server has shown it
        takes: the `held` calls it is serving right now, or one above the recent accepted
        peak, whichever is more, so a cap is learned in one step instead of halving below
        it. Without, multiplicative decrease. One cut per episode: calls sent before the
        last cut (`sent_at`), or within `cooldown_s` of it when the send time is unknown,
        do not cut again.
        """
        now = time.monotonic()
        last = self._last_cut
        if (sent_at is not None and sent_at <= last) or (
                sent_at is None and now - last < self.cooldown_s):
            return False
        self._last_cut = now
        self._successes = 0
        if level is None:
            target = int(self.limit * self.decrease)
        else:
            peak = self.accepted_peak
            target = max(held, -1 if peak is None else peak + 1)
            self._space_probes(target)
        self.limit = max(self.min_limit, min(self.limit, target))
        return True

    def _space_probes(self, target: int) -> None:
        """Each probe above a cap costs a refused call: when a cut lands on the same cap as
        the last one, wait twice as long before the next probe (up to `max_probe_every`)."""
        if target == self._last_target:
            self._probe_every = min(self._probe_every * 2, self.max_probe_every)
        else:
            self._probe_every = 1
        self._last_target = target


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
    """Wraps a provider with a concurrency slot and a paced turn per call, and 429 handling.

    A refused call is classified before anything is cut: if the server recently accepted a
    call sent with as many others in flight, the refusal cannot be a concurrency cap, so
    only the rate pacer learns from it; a `Retry-After` (a time, which a rate limiter can
    name and a concurrency cap cannot) or a spent request quota also points at the rate.
    The call is then re-queued at the front: paced calls wait on the pacer (which honours
    `Retry-After` for everyone), unpaced ones back off on their own first.
    """

    def __init__(
        self,
        inner: ChatProvider,
        limiter: AdaptiveLimiter,
        *,
        pacer: RatePacer | None = None,
        global_slots: asyncio.Semaphore | None = None,
        backoff: BackoffPolicy | None = None,
        wire: Wire | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.pacer = pacer or RatePacer()
        self.global_slots = global_slots
        self.backoff = backoff or BackoffPolicy()
        self.wire = wire
        self.rate_limited = 0
        self.in_flight = 0
        """Calls sent to the server and not yet answered (slot holders waiting on the pacer
        are not counted)."""
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
        """A stream that waits for its turn and survives 429s before its first delta."""
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
            ticket = await self._acquire(front=attempt > 0)
            try:
                try:
                    async for part in self.inner.generate(messages, tools, settings).raw():
                        if type(part) is RateLimitDelta:
                            self.pacer.observe(part.info)
                            continue
                        yielded = True
                        yield part
                finally:
                    self._release()
                self.limiter.on_success(ticket.level, now=ticket.sent_at)
                self.pacer.on_success()
                return
            except RateLimitError as exc:
                attempt += 1
                if yielded or attempt > self.backoff.max_retries:
                    raise
                await self._back_off(attempt, exc, ticket)

    async def _acquire(self, *, front: bool) -> _Ticket:
        if self.global_slots is not None:
            await self.global_slots.acquire()
        try:
            if not self.limiter.try_acquire():
                await self.limiter.acquire(front=front)
            try:
                turn = self.pacer.try_acquire() or await self.pacer.acquire(front=front)
            except BaseException:
                self.limiter.release()
                raise
        except BaseException:
            if self.global_slots is not None:
                self.global_slots.release()
            raise
        level = self.in_flight
        self.in_flight += 1
        return _Ticket(turn[0], turn[1], level)

    def _release(self) -> None:
        self.in_flight -= 1
        self.limiter.release()
        if self.global_slots is not None:
            self.global_slots.release()

    async def _back_off(self, attempt: int, exc: RateLimitError, ticket: _Ticket) -> None:
        self.rate_limited += 1
        limits = exc.limits
        if limits is not None:
            self.pacer.observe(limits)
        by_concurrency = self.limiter.refused_by_concurrency(ticket.level)
        spent = limits is not None and limits.remaining_requests == 0
        by_rate = not by_concurrency or exc.retry_after is not None or spent
        if by_concurrency:
            self.limiter.on_rate_limit(ticket.level, ticket.sent_at, held=self.in_flight)
        if by_rate:
            self.pacer.on_rate_limit(ticket.sent_at, ticket.send_no, exc.retry_after)
        delay = self._delay(attempt, exc.retry_after, paced=by_rate)
        if self.wire is not None and self.wire.active:
            event = RateLimited(current_agent.get(), self.inner.model_name, delay,
                                self.limiter.limit, self.pacer.rate)
            self.wire.emit(event)
        if delay > 0:
            await self._sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None, *, paced: bool) -> float:
        """This call's own wait before it queues again.

        A call the pacer now paces queues at once (the pacer spaces it and holds everyone
        for `Retry-After`) until it has been refused a few times in a row; otherwise the
        exponential backoff, with `Retry-After` as a lower bound.
        """
        if paced and self.pacer.rate is not None:
            if attempt <= _PACED_FREE_RETRIES:
                return 0.0
            return self.backoff.delay(attempt - _PACED_FREE_RETRIES, None)
        return self.backoff.delay(attempt, retry_after)


_PACED_FREE_RETRIES = 2
"""Retries of one call that the pacer alone spaces before the call also backs off itself."""


@dataclass(slots=True)
class _Ticket:
    """When and how a call was sent, for the feedback on its answer."""

    sent_at: float
    send_no: int
    level: int
