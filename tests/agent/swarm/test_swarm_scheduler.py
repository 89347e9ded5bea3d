"""AIMD limiter and the scheduled provider that re-drives the same call after a 429."""

from __future__ import annotations

import asyncio
import time

import pytest

from openk2.agent.llm import RateLimitError, user
from openk2.agent.llm.scripted import Reply, ScriptedProvider
from openk2.agent.loop.events import RateLimited, Wire
from openk2.agent.swarm import AdaptiveLimiter, BackoffPolicy, ScheduledProvider


async def test_limiter_caps_in_flight_and_is_fifo() -> None:
    limiter = AdaptiveLimiter(2)
    order: list[int] = []

    async def job(i: int) -> None:
        await limiter.acquire()
        order.append(i)
        assert limiter.in_flight <= 2
        await asyncio.sleep(0.01)
        limiter.release()

    await asyncio.gather(*(job(i) for i in range(6)))
    assert order == list(range(6)) and limiter.in_flight == 0


async def test_aimd_cuts_on_429_and_recovers_additively() -> None:
    limiter = AdaptiveLimiter(16, cooldown_s=10)
    assert limiter.on_rate_limit() and limiter.limit == 8
    assert not limiter.on_rate_limit() and limiter.limit == 8  # once per cooldown
    for _ in range(8):
        limiter.on_success()
    assert limiter.limit == 9
    with pytest.raises(ValueError):
        AdaptiveLimiter(0)


async def test_cancelled_waiter_gives_its_place_back() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    limiter.release()
    assert limiter.in_flight == 0
    await asyncio.wait_for(limiter.acquire(), 1)


async def test_concurrency_cap_is_learned_in_one_step_and_probes_are_spaced() -> None:
    limiter = AdaptiveLimiter(16)
    assert limiter.refused_by_concurrency(3)  # nothing accepted yet: could be a cap
    for level in range(8):  # the server took calls sent with up to 7 others in flight
        limiter.on_success(level)
    assert limiter.accepted_peak == 7
    assert not limiter.refused_by_concurrency(5) and limiter.refused_by_concurrency(8)
    assert limiter.on_rate_limit(8, sent_at=time.monotonic(), held=8) and limiter.limit == 8
    for _ in range(8):
        limiter.on_success(7)
    assert limiter.limit == 9  # probe one above the cap
    assert limiter.on_rate_limit(8, sent_at=time.monotonic(), held=8) and limiter.limit == 8
    assert not limiter.on_rate_limit(8, sent_at=0.0, held=8)  # sent before the cut
    for _ in range(8):
        limiter.on_success(7)
    assert limiter.limit == 8  # same cap twice: the next probe waits twice as long
    for _ in range(8):
        limiter.on_success(7)
    assert limiter.limit == 9


async def test_rate_refusal_is_paced_and_concurrency_refusal_backs_off() -> None:
    inner = ScriptedProvider([RateLimitError(retry_after=0.02), RateLimitError(),
                              Reply(text="finally")])
    wire, seen = Wire(), []
    wire.subscribe(seen.append)
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    provider = ScheduledProvider(inner, AdaptiveLimiter(4),
                                 backoff=BackoffPolicy(base_s=0.5), wire=wire, sleep=fake_sleep)
    done = await provider.generate([user("x")]).collect()
    assert done.message.content == "finally" and provider.rate_limited == 2
    events = [e for e in seen if isinstance(e, RateLimited)]
    # Retry-After names a time: the pacer holds every call and paces from then on, so the
    # call itself queues again at once.
    assert events[0].delay == 0 and events[0].rate is not None
    assert provider.pacer.paused_until > 0
    # No Retry-After and nothing accepted yet: maybe a concurrency cap, so this call backs
    # off on its own (exponential, jittered) and the limit drops to what the server held.
    assert len(slept) == 1 and 0.5 <= slept[0] <= 1.0 and events[1].delay == slept[0]
    assert [e.limit for e in events] == [1, 1]
    assert provider.limiter.in_flight == 0 and provider.in_flight == 0


async def test_scheduled_provider_gives_up_after_max_retries() -> None:
    inner = ScriptedProvider(lambda c: RateLimitError(retry_after=0))
    provider = ScheduledProvider(inner, AdaptiveLimiter(2), backoff=BackoffPolicy(
        base_s=0.001, max_retries=3))
    with pytest.raises(RateLimitError):
        await provider.generate([user("x")]).collect()
    assert len(inner.calls) == 4 and provider.limiter.in_flight == 0
