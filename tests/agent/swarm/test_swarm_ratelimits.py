"""The swarm against request-rate limits: pacing converges, Retry-After holds everyone, runs
survive an outage, budgets hold, `max_rps` is a hard cap, and rate-limit headers are used."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from rich.console import Console
from swarm_scripts import (
    WORKER,
    TokenBucketLimit,
    echo_worker,
    fan_out,
    is_orchestrator,
    note,
    route,
)

from openk2.agent.llm import RateLimitError
from openk2.agent.llm.openai_compat import OpenAICompatProvider, RetryPolicy
from openk2.agent.llm.scripted import ChatCall, ScriptedProvider
from openk2.agent.loop.events import RateLimited
from openk2.agent.swarm import (
    BackoffPolicy,
    BudgetLimits,
    Swarm,
    SwarmConfig,
)
from openk2.agent.swarm.progress import SwarmProgress
from openk2.agent.tools import Toolset

BACKOFF = BackoffPolicy(base_s=0.02, max_s=0.2, max_retries=1000)


def _work(n: int, steps: int, delay: float = 0.005):
    return route(fan_out([f"t{i}" for i in range(n)]), echo_worker(delay=delay, steps=steps))


def _swarm(provider, **config) -> Swarm:
    cfg = SwarmConfig(backoff=BACKOFF, **config)
    return Swarm(provider, config=cfg, tools=Toolset([note]), specs=[WORKER])


def _limited(bucket: TokenBucketLimit, script, log: list[tuple[float, bool]] | None = None):
    """`script` behind `bucket`: a refused call gets 429 with the bucket's Retry-After."""

    def serve(c: ChatCall):
        retry_after = bucket.admit()
        if log is not None:
            log.append((time.monotonic(), retry_after is None))
        if retry_after is not None:
            return RateLimitError("rate limit reached", retry_after=retry_after)
        return script(c)

    return serve


async def test_pacing_converges_under_a_token_bucket_and_refusals_stop() -> None:
    bucket, log = TokenBucketLimit(rate=150.0, burst=5), []
    swarm = _swarm(ScriptedProvider(_limited(bucket, _work(40, 4), log)))
    out = await swarm.run("Forty tasks behind 150 requests/s.")
    assert out.state == "completed" and {a.state for a in out.agents} == {"completed"}
    assert out.accounting.total_steps == 2 + 40 * 4 == bucket.admitted
    assert bucket.refused == swarm.rate_limited
    # Unpaced, every call that finds the bucket empty is refused (a fan-out of 40 at once
    # alone gives 35); paced, the refusals are the first few and an occasional probe.
    assert bucket.refused <= 25
    late = [ok for _, ok in log[len(log) // 2:]]
    assert late.count(False) <= 5
    pacer = swarm._providers["default"].pacer
    learned = pacer.estimate or pacer.rate
    # What the server accepted bounds the estimate from above (a loaded machine that sends
    # late only lowers it, so there is no lower bound to assert).
    assert learned is not None and learned <= 300


async def test_retry_after_holds_every_call_to_the_provider() -> None:
    starts: list[float] = []
    ok = _work(20, 2)

    def script(c: ChatCall):
        starts.append(time.monotonic())
        if len(starts) == 3:  # the second sub-agent call: Retry-After for everyone
            return RateLimitError("quota", retry_after=0.2)
        return ok(c)

    swarm = _swarm(ScriptedProvider(script))
    out = await swarm.run("Twenty tasks.")
    assert out.state == "completed" and {a.state for a in out.agents} == {"completed"}
    refused_at = starts[2]
    assert all(t >= refused_at + 0.19 for t in starts[3:])  # nobody went early


async def test_no_deadlock_when_the_limit_recovers_after_an_outage() -> None:
    ok = _work(30, 2)
    start = time.monotonic()

    def script(c: ChatCall):
        if not is_orchestrator(c) and time.monotonic() - start < 0.3:
            return RateLimitError("overloaded", retry_after=0.05)
        return ok(c)

    swarm = _swarm(ScriptedProvider(script))
    out = await asyncio.wait_for(swarm.run("Thirty tasks through an outage."), 30)
    assert out.state == "completed" and {a.state for a in out.agents} == {"completed"}
    assert swarm.rate_limited >= 1
    scheduled = swarm._providers["default"]
    assert scheduled.in_flight == 0 and scheduled.limiter.in_flight == 0
    assert not scheduled.pacer._waiters
    rate = scheduled.pacer.rate  # paced slowly in the outage, grew back afterwards
    assert rate is None or rate > 40


async def test_budgets_hold_while_paced() -> None:
    bucket = TokenBucketLimit(rate=100.0, burst=2)
    provider = ScriptedProvider(_limited(bucket, _work(30, 5, delay=0.0)))
    swarm = _swarm(provider, limits=BudgetLimits(max_steps=40, max_agents=30))
    out = await swarm.run("Too much work, rate-limited.")
    assert out.accounting.total_steps <= 40 and bucket.admitted <= 40
    aborted = [a for a in out.agents if a.state == "aborted"]
    assert aborted and all("step budget" in (a.error or "") for a in aborted)


async def test_max_rps_is_never_exceeded() -> None:
    starts: list[float] = []
    ok = _work(20, 2, delay=0.0)

    def script(c: ChatCall):
        starts.append(time.monotonic())
        return ok(c)

    out = await _swarm(ScriptedProvider(script), max_rps=50.0).run("Twenty tasks at 50/s.")
    assert out.state == "completed" and len(starts) == 42
    # Any 11 consecutive calls span at least 10 turns of 1/50 s (lower bounds only: a
    # loaded machine can make the run slower, never faster).
    assert all(starts[i + 10] - starts[i] >= 10 / 50 * 0.95 for i in range(len(starts) - 10))


async def test_rate_limit_headers_over_http_keep_refusals_rare(openai_server) -> None:
    bucket, log = TokenBucketLimit(rate=100.0, burst=10), []
    server = await openai_server(_limited(bucket, _work(30, 3), log))
    server.headers = bucket.headers
    provider = OpenAICompatProvider(server.base_url, "k2",
                                    retry=RetryPolicy(retry_rate_limits=False))
    swarm = _swarm(provider)
    out = await swarm.run("Thirty tasks behind a quota that reports itself.")
    await provider.aclose()
    assert out.state == "completed" and {a.state for a in out.agents} == {"completed"}
    assert bucket.admitted == out.accounting.total_steps == 2 + 30 * 3
    assert bucket.refused == swarm.rate_limited
    # The first fan-out sends 30 requests before any answer is back (20 refused); after
    # that the headers and 429s pace the rest.
    late = [ok for _, ok in log[40:]]
    assert late.count(False) <= 5
    pacer = swarm._providers["default"].pacer
    assert pacer.estimate is not None and pacer.estimate <= 150  # from the headers


def test_live_view_shows_the_limit_and_pace_after_429s() -> None:
    view = SwarmProgress("r1", 100, console=Console(file=io.StringIO()))
    view(RateLimited("worker-1", "k2", 0.0, 8, 97.3))
    view(RateLimited("worker-2", "k2", 0.5, 6, None))
    console = Console(file=io.StringIO(), width=200)
    console.print(view.render())
    assert "2 (limit 6)" in console.file.getvalue()
    view(RateLimited("worker-3", "k2", 0.0, 6, 97.3))
    console = Console(file=io.StringIO(), width=200)
    console.print(view.render())
    assert "3 (limit 6, 97.3 req/s)" in console.file.getvalue()


def test_bad_max_rps_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="max_rate must be > 0"):
        _swarm(ScriptedProvider(_work(1, 1)), max_rps=0.0)
