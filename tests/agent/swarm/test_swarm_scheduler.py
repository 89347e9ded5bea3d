"""AIMD limiter and the scheduled provider that re-drives the same call after a 429."""

from __future__ import annotations

import asyncio

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


async def test_scheduled_provider_redrives_after_429_and_reports() -> None:
    inner = ScriptedProvider([RateLimitError(retry_after=0.02), RateLimitError(),
                              Reply(text="finally")])
    wire, seen = Wire(), []
    wire.subscribe(seen.append)
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    provider = ScheduledProvider(inner, AdaptiveLimiter(4, cooldown_s=0),
                                 backoff=BackoffPolicy(base_s=0.5), wire=wire, sleep=fake_sleep)
    done = await provider.generate([user("x")]).collect()
    assert done.message.content == "finally" and provider.rate_limited == 2
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0  # retry-after is a lower bound
    assert [e.limit for e in seen if isinstance(e, RateLimited)] == [2, 1]
    assert provider.limiter.in_flight == 0


async def test_scheduled_provider_gives_up_after_max_retries() -> None:
    inner = ScriptedProvider(lambda c: RateLimitError(retry_after=0))
    provider = ScheduledProvider(inner, AdaptiveLimiter(2), backoff=BackoffPolicy(
        base_s=0.001, max_retries=3))
    with pytest.raises(RateLimitError):
        await provider.generate([user("x")]).collect()
    assert len(inner.calls) == 4 and provider.limiter.in_flight == 0
