"""The rate pacer on its own: pacing, estimates from paired 429s, pauses, holds, headers."""

from __future__ import annotations

import asyncio
import time

import pytest

from openk2.agent.llm import RateLimitInfo
from openk2.agent.swarm import PacingPolicy, RatePacer


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _send(pacer: RatePacer, n: int) -> list[tuple[float, int]]:
    """`n` calls that must get their turn at once (the fake clock never moves by itself)."""
    return [await asyncio.wait_for(pacer.acquire(), 1) for _ in range(n)]


async def test_unpaced_until_told_otherwise() -> None:
    pacer = RatePacer()
    tickets = await _send(pacer, 500)
    assert pacer.rate is None and [n for _, n in tickets] == list(range(1, 501))


async def test_max_rate_paces_fifo_and_retries_go_first() -> None:
    pacer = RatePacer(PacingPolicy(max_rate=50.0))
    order: list[str] = []

    async def call(name: str, front: bool = False) -> None:
        await pacer.acquire(front=front)
        order.append(name)

    start = time.monotonic()
    await call("first")
    waiting = [asyncio.create_task(call(f"new{i}")) for i in range(4)]
    await asyncio.sleep(0)
    retry = asyncio.create_task(call("retry", front=True))
    await asyncio.gather(*waiting, retry)
    assert order == ["first", "retry", "new0", "new1", "new2", "new3"]
    assert time.monotonic() - start >= 5 / 50 * 0.9  # 5 more turns at 50/s


async def test_first_429_starts_pacing_from_what_was_accepted_or_retry_after() -> None:
    clock = FakeClock()
    pacer = RatePacer(clock=clock)
    tickets = await _send(pacer, 12)
    assert pacer.on_rate_limit(*tickets[-1])  # no Retry-After: 11 accepted in the last second
    assert pacer.rate == pytest.approx(11.0) and pacer.estimate is None
    assert not pacer.on_rate_limit(*tickets[-2])  # sent before the cut: nothing new

    pacer = RatePacer(clock=clock)
    tickets = await _send(pacer, 3)
    pacer.on_rate_limit(*tickets[-1], retry_after=0.02)  # a bucket's next token in 20 ms
    # between 2 accepted/s (too low) and 1 / Retry-After = 50/s (too high): sqrt(2 * 50)
    assert pacer.rate == pytest.approx(10.0) and pacer.paused_until == pytest.approx(clock.t + 0.02)


async def test_paired_refusals_measure_the_servers_rate() -> None:
    clock = FakeClock()
    pacer = RatePacer(PacingPolicy(max_rate=1000.0, burst_s=1.0), clock=clock)
    clock.t += 1.0
    await _send(pacer, 10)
    first = await _send(pacer, 1)
    pacer.on_rate_limit(*first[0])  # cut from the user cap: no estimate yet
    assert pacer.rate == pytest.approx(700.0) and pacer.estimate is None
    clock.t += 0.1
    refused = await _send(pacer, 1)
    pacer.on_rate_limit(*refused[0])  # within the cooldown: counted, no cut
    await _send(pacer, 30)  # 30 accepted in the next 0.3 s, then a refusal
    clock.t += 0.3
    last = await _send(pacer, 1)
    assert pacer.on_rate_limit(*last[0])
    assert pacer.estimate == pytest.approx(30 / 0.3)  # accepted between the paired refusals
    assert pacer.rate == pytest.approx(0.95 * 100.0)


async def test_lone_refusal_after_a_long_episode_learns_what_was_accepted() -> None:
    clock = FakeClock()
    pacer = RatePacer(PacingPolicy(max_rate=100.0, burst_s=2.0), clock=clock)
    clock.t += 1.0
    pacer.on_rate_limit(*(await _send(pacer, 8))[-1])  # paced from the start: 8 calls first
    assert pacer.rate == pytest.approx(70.0) and pacer.estimate is None
    clock.t += 2.0
    await _send(pacer, 120)  # all accepted over 2 s, then one refusal: no pair to measure
    assert pacer.on_rate_limit(*(await _send(pacer, 1))[0])
    assert pacer.estimate == pytest.approx(60.0) and pacer.rate == pytest.approx(57.0)


async def test_probing_recovers_to_and_then_past_the_estimate() -> None:
    clock = FakeClock()
    pacer = RatePacer(clock=clock)
    pacer.on_rate_limit(*(await _send(pacer, 1))[0])  # pacing from here, turn used up
    pacer.estimate, pacer.rate = 100.0, 50.0
    waiter = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    clock.t += 0.1
    pacer.on_success()  # below the estimate: doubles per recover_s
    assert pacer.rate == pytest.approx(100.0)
    clock.t += 0.5
    pacer.on_success()  # above it: +5% after probe_s of being held back
    assert pacer.rate == pytest.approx(105.0)
    clock.t += 1.0
    pacer.on_success()
    assert pacer.rate == pytest.approx(135.0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    rate = pacer.rate
    clock.t += 5.0
    pacer.on_success()  # nobody waits on the pacer: no reason to go faster
    assert pacer.rate == rate


async def test_retry_after_pauses_every_call() -> None:
    pacer = RatePacer()
    pacer.pause(0.15)
    start = time.monotonic()
    await asyncio.gather(pacer.acquire(), pacer.acquire())
    assert time.monotonic() - start >= 0.14
    pacer.pause(1e6)
    assert pacer.paused_until - time.monotonic() <= pacer.policy.max_pause_s


async def test_cancelled_waiter_gives_its_turn_back() -> None:
    pacer = RatePacer(PacingPolicy(max_rate=20.0))
    await pacer.acquire()
    gone = asyncio.create_task(pacer.acquire())
    stays = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    await asyncio.wait_for(stays, 2)
    assert not pacer._waiters


async def test_refusals_that_go_on_at_pace_make_the_pacer_step_aside() -> None:
    clock = FakeClock()
    pacer = RatePacer(PacingPolicy(burst_s=1.0), clock=clock)
    pacer.on_rate_limit(*(await _send(pacer, 1))[0])
    pacer.estimate, pacer.rate = 100.0, 95.0
    for i in range(10):  # every other call refused while paced at the estimate
        clock.t += 0.02
        ticket = (await _send(pacer, 1))[0]
        if i % 2:
            pacer.on_rate_limit(*ticket)
    assert pacer.rate is None and pacer.estimate is None
    assert clock.t < pacer.held_until <= clock.t + pacer.policy.hold_s
    assert not pacer.on_rate_limit(*(await _send(pacer, 1))[0])  # held: no new cut


async def test_headers_set_the_rate_and_pause_a_spent_quota() -> None:
    clock = FakeClock()
    pacer = RatePacer(clock=clock)
    pacer.observe(RateLimitInfo(60, 30, 30.0))
    assert pacer.rate is None  # plenty left: no reason to pace
    pacer.observe(RateLimitInfo(60, 3, 57.0))
    assert pacer.rate == pytest.approx(1.0) and pacer.estimate == pytest.approx(1.0)
    pacer.observe(RateLimitInfo(60, 0, 30.0))
    assert pacer.paused_until == pytest.approx(clock.t + 0.5)  # one request's refill time
    pacer.observe(RateLimitInfo(remaining_tokens=0, reset_tokens_s=2.0))
    assert pacer.paused_until == pytest.approx(clock.t + 2.0)


def test_policy_is_validated() -> None:
    for bad in ({"max_rate": 0.0}, {"decrease": 1.5}, {"backoff": 1.0}, {"min_rate": 0.0}):
        with pytest.raises(ValueError):
            PacingPolicy(**bad)
