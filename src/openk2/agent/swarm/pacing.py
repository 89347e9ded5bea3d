"""Pacing model calls by request rate: a client-side token bucket that learns the server's.

Limiting concurrency does not bound the request rate: against an RPM-style limit, a call that
is refused frees its slot at once and the next waiter is refused too. `RatePacer` releases
calls at a rate instead, and learns that rate from the provider's answers:

- Unpaced until the first 429 (or paced from the start at a user's `max_rate`).
- Estimating the limit: a 429 means the server's bucket was empty when that call was sent.
  Between two refused calls, both with an empty bucket, the server admitted exactly what it
  refilled, so `accepted calls sent between them / time between them` is its rate (a lower
  bound if its bucket overflowed meanwhile, which pacing near the rate prevents). A lone
  refusal after a long episode has no partner; the rate accepted over the episode is then
  a lower bound, and raises the estimate if it is higher.
- Multiplicative decrease to just below that estimate (`decrease`); without one (the first
  429s), back off multiplicatively from the current rate. One cut per episode: a refusal of
  a call sent before the last cut says nothing new, and the next cut waits until `cut_every`
  calls have gone out at the new rate.
- Increase only while calls are waiting on the pacer: back up to the estimate quickly
  (doubling every `recover_s`), then slowly above it, probing for a higher limit. Before
  any estimate, the rate doubles every `recover_s` until the first cut, and probes slowly
  above the rate that cut left.
- Refusals that go on at pace are not about pace: if, paced at the estimate, a large share
  of calls is still refused (random overload, a quota someone else spends), the pacer stops
  pacing for `hold_s` and leaves spacing to per-call backoff instead of starving the run.
- `Retry-After` pauses every call to this provider until then; rate-limit headers set the
  rate from the server's own numbers and pause when its quota is spent.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from openk2.agent.llm.ratelimits import RateLimitInfo


@dataclass(kw_only=True, slots=True)
class PacingPolicy:
    """Knobs of the rate pacer (defaults suit LLM APIs with per-minute or per-second limits)."""

    max_rate: float | None = None
    """User cap in requests per second; also the starting rate (None = learn from 429s)."""
    min_rate: float = 0.05
    """The pacer never goes slower than this (one call per 20 s)."""
    decrease: float = 0.95
    """Rate after a 429, as a fraction of the estimated limit."""
    backoff: float = 0.7
    """Rate after a 429 with no estimate yet, as a fraction of the current rate."""
    increase: float = 0.05
    """Probing above the estimate: the rate is `estimate x (1 + increase x (2^(t/probe_s)
    - 1))` after `t` seconds of being held back without a 429, so it creeps past a good
    estimate (+5% after `probe_s`) and quickly leaves a stale, low one (+75% after 4x)."""
    probe_s: float = 0.5
    """Doubling time of the probing increment."""
    recover_s: float = 0.1
    """Doubling time while below the estimate (or before there is one)."""
    window_s: float = 1.0
    """How far back refusals are paired for an estimate."""
    min_span_s: float = 0.05
    """Shortest time between two paired refusals for an estimate."""
    min_accepted: int = 4
    """Fewest accepted calls between two paired refusals for an estimate."""
    cut_every: int = 8
    """Calls sent at a new rate before the next cut."""
    burst_s: float = 0.02
    """Client-side bucket size, in seconds of the current rate (at least one call)."""
    max_pause_s: float = 60.0
    """Cap on one global pause (`Retry-After`, spent quota)."""
    unresponsive_share: float = 0.3
    """Share of calls refused while paced at the estimate that means pacing does not help."""
    hold_s: float = 10.0
    """How long the pacer then stays out of the way before it may pace again."""

    def __post_init__(self) -> None:
        if not 0 < self.decrease <= 1 or not 0 < self.backoff < 1:
            raise ValueError("need 0 < decrease <= 1 and 0 < backoff < 1")
        if self.max_rate is not None and self.max_rate <= 0:
            raise ValueError(f"max_rate must be > 0, got {self.max_rate}")
        if self.min_rate <= 0 or self.recover_s <= 0 or self.window_s <= 0:
            raise ValueError("min_rate, recover_s and window_s must be > 0")


class RatePacer:
    """A FIFO token bucket whose refill rate adapts to the provider (see module doc)."""

    def __init__(
        self, policy: PacingPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or PacingPolicy()
        self.rate: float | None = self.policy.max_rate
        """Current pacing rate in calls per second; None = not pacing."""
        self.estimate: float | None = None
        """The provider's sustainable rate as last measured from its 429s."""
        self.paused_until = 0.0
        self.refused = 0
        self._clock = clock
        self._tokens = 1.0
        self._stamp = clock()
        self._grown = self._stamp
        self._sent = 0
        self._sends: collections.deque[float] = collections.deque(maxlen=4096)
        self._refusals: collections.deque[tuple[float, int, int]] = collections.deque()
        self._last_cut = -math.inf
        self._probing = 0.0
        self._ceiling: float | None = None
        self._cut_sent = 0
        self._refused_since_cut = 0
        self.held_until = 0.0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    # ---- admission ----------------------------------------------------------------------

    def try_acquire(self) -> tuple[float, int] | None:
        """This call's turn if it is free now (no waiting; the common, unpaced case)."""
        now = self._clock()
        if not self._waiters and self._take(now):
            return self._stamp_send(now)
        return None

    async def acquire(self, *, front: bool = False) -> tuple[float, int]:
        """Wait for this call's turn; returns (send time, send number) for the feedback."""
        turn = self.try_acquire()
        if turn is not None:
            return turn
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if front:
            self._waiters.appendleft(fut)
        else:
            self._waiters.append(fut)
        self._arm()
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                self._waiters.remove(fut)
            elif self.rate is not None:
                self._tokens += 1.0  # the turn was handed to us just before cancellation
            raise
        return self._stamp_send(self._clock())

    def _stamp_send(self, now: float) -> tuple[float, int]:
        self._sent += 1
        self._sends.append(now)
        return now, self._sent

    def _take(self, now: float) -> bool:
        if now < self.paused_until:
            return False
        if self.rate is None:
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _refill(self, now: float) -> None:
        rate = self.rate or 0.0
        cap = max(1.0, rate * self.policy.burst_s)
        self._tokens = min(cap, self._tokens + (now - self._stamp) * rate)
        self._stamp = now

    def _arm(self) -> None:
        """Schedule the next release if calls wait and no release is scheduled."""
        if self._timer is not None or not self._waiters:
            return
        now = self._clock()
        wait = self.paused_until - now
        if self.rate is not None:
            self._refill(now)
            wait = max(wait, (1.0 - self._tokens) / self.rate)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(wait, 0.0), self._release)

    def _release(self) -> None:
        self._timer = None
        now = self._clock()
        while self._waiters:
            fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._take(now):
                break
            self._waiters.popleft()
            fut.set_result(None)
        self._arm()

    # ---- feedback -----------------------------------------------------------------------

    def on_success(self) -> None:
        """A call went through: raise the rate if the pacer is what holds calls back."""
        if self.rate is None or not self._waiters:
            self._grown = 0.0  # not what holds calls back: growth restarts from next time
            return
        now = self._clock()
        dt, self._grown = (now - self._grown if self._grown else 0.0), now
        p = self.policy
        target = self.estimate or self._ceiling
        if target is None or self.rate < target:
            grown = self.rate * 2.0 ** (dt / p.recover_s)
            self.rate = grown if target is None else min(grown, target)
        else:
            self._probing += dt
            probe = target * (1.0 + p.increase * (2.0 ** (self._probing / p.probe_s) - 1.0))
            self.rate = max(self.rate, probe)
        if p.max_rate is not None:
            self.rate = min(self.rate, p.max_rate)

    def on_rate_limit(
        self, sent_at: float, send_no: int, retry_after: float | None = None
    ) -> bool:
        """A call sent at `sent_at` (the `send_no`-th) got 429; True if the rate was cut."""
        now = self._clock()
        self.refused += 1
        if retry_after is not None and retry_after > 0:
            self.pause(retry_after)
        self._refusals.append((sent_at, send_no, self.refused))
        while self._refusals and self._refusals[0][0] < now - self.policy.window_s:
            self._refusals.popleft()
        if sent_at <= self._last_cut:
            return False
        self._refused_since_cut += 1
        if now < self.held_until or not self._cut_due(now):
            return False
        if self._unresponsive():
            self._hold(now)
            return False
        self._cut(now, self._pair_estimate(sent_at, send_no), retry_after)
        return True

    def _cut_due(self, now: float) -> bool:
        """Cut again only after `cut_every` calls went out at the last rate (so their fate
        says whether it helped) and `min_span_s` passed; unpaced, at once."""
        if self.rate is None:
            return True
        p = self.policy
        sent = self._sent - self._cut_sent
        return sent >= p.cut_every and now - self._last_cut >= p.min_span_s

    def _unresponsive(self) -> bool:
        """Paced at the estimate, yet a large share of the calls since the last cut refused."""
        if self.rate is None or self.estimate is None or self.rate > 1.1 * self.estimate:
            return False
        sent = self._sent - self._cut_sent
        return self._refused_since_cut >= self.policy.unresponsive_share * sent

    def _hold(self, now: float) -> None:
        self.held_until = now + self.policy.hold_s
        self.rate = self.policy.max_rate
        self.estimate = self._ceiling = None
        self._last_cut = now
        self._cut_sent, self._refused_since_cut = self._sent, 0
        self._rearm()

    def _pair_estimate(self, sent_at: float, send_no: int) -> float | None:
        """Accepted calls per second between the oldest refusal since the last cut and this
        one (None if they are too close for a count to mean anything)."""
        p = self.policy
        for t0, n0, r0 in self._refusals:
            if t0 <= self._last_cut:
                continue  # paced differently before the cut: its bucket may have overflowed
            span = sent_at - t0
            if span < p.min_span_s:
                return None
            accepted = (send_no - n0 - 1) - (self.refused - r0 - 1)
            if accepted >= p.min_accepted:
                return accepted / span
        return None

    def _cut(self, now: float, estimate: float | None, retry_after: float | None) -> None:
        p = self.policy
        if estimate is None and self.rate is not None:
            accepted = self._episode_rate(now)
            if accepted > 0:
                estimate = max(self.estimate or 0.0, accepted)
        if estimate is not None:
            self.estimate, self._ceiling = estimate, None
            new = p.decrease * estimate
        elif self.estimate is not None:
            new = p.decrease * self.estimate
        elif self.rate is not None:
            new = self._ceiling = p.backoff * self.rate  # probe slowly above it from now on
        else:
            new = self._first_rate(now, retry_after)
        if p.max_rate is not None:
            new = min(new, p.max_rate)
        if self.rate is None:
            self._tokens, self._stamp = 0.0, now
        self.rate = max(p.min_rate, new)
        self._last_cut = self._grown = now
        self._probing = 0.0
        self._cut_sent, self._refused_since_cut = self._sent, 0

    def _episode_rate(self, now: float) -> float:
        """Calls per second the server accepted since the last cut (0 over too short a span).

        It took them all, so its rate is at least this: a lone refusal after a long episode
        (no pair to measure) sets or raises the estimate to it instead of cutting blindly.
        """
        span = now - self._last_cut
        if span < self.policy.window_s:
            return 0.0
        return (self._sent - self._cut_sent - self._refused_since_cut) / span

    def _first_rate(self, now: float, retry_after: float | None) -> float:
        """A rate to start pacing at, before any estimate.

        What the server accepted in the last window is a safe underestimate. A token
        bucket's `Retry-After` is the wait for its next token, anywhere in (0, one refill
        interval], so its inverse is an overestimate, often by far. Start between the two
        (geometric mean); doubling every `recover_s` closes the gap from below within a few
        tenths of a second.
        """
        start = now - self.policy.window_s
        sends = self._sends
        while sends and sends[0] < start:
            sends.popleft()
        refused = sum(1 for t, _, _ in self._refusals if t >= start)
        accepted = max(1, len(sends) - refused) / self.policy.window_s
        if not retry_after or 1.0 / retry_after <= accepted:
            return accepted
        return math.sqrt(accepted / retry_after)

    def pause(self, seconds: float) -> None:
        """Hold every call to this provider for `seconds` (a server's `Retry-After`)."""
        until = self._clock() + min(seconds, self.policy.max_pause_s)
        if until > self.paused_until:
            self.paused_until = until
            self._rearm()

    def observe(self, info: RateLimitInfo) -> None:
        """Use the server's own rate-limit numbers (from response headers)."""
        rate, limit, left = info.refill_rate(), info.limit_requests, info.remaining_requests
        if rate is not None and limit and left is not None and left <= max(1, limit // 10):
            self._adopt(rate)
        for remaining, per, reset in (
            (info.remaining_requests, info.limit_requests, info.reset_requests_s),
            (info.remaining_tokens, None, info.reset_tokens_s),
        ):
            if remaining is not None and remaining <= 0 and reset is not None:
                self.pause(reset / per if per else reset)  # requests: one's refill time

    def _adopt(self, rate: float) -> None:
        """Pace at a rate the server told us (its quota is nearly spent)."""
        p = self.policy
        if p.max_rate is not None:
            rate = min(rate, p.max_rate)
        if self.rate is None:
            self._tokens, self._stamp = 0.0, self._clock()
        self.estimate = rate
        self.rate = max(p.min_rate, rate)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiters:
            self._arm()
