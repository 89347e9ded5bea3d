"""Rate-limit headers: every provider's spelling parsed into `RateLimitInfo`, and carried by
the HTTP provider ahead of the content and on 429s."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from multidict import CIMultiDict

from openk2.agent.llm import RateLimitDelta, RateLimitError, RateLimitInfo, user
from openk2.agent.llm.openai_compat import OpenAICompatProvider, RetryPolicy
from openk2.agent.llm.ratelimits import parse_duration, parse_rate_limit_headers, parse_reset
from openk2.agent.llm.scripted import Reply


def test_openai_headers_with_go_durations() -> None:
    info = parse_rate_limit_headers(CIMultiDict({
        "x-ratelimit-limit-requests": "2500", "x-ratelimit-remaining-requests": "2487",
        "x-ratelimit-reset-requests": "42ms", "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "1884221", "x-ratelimit-reset-tokens": "1m1.5s",
    }))
    assert info == RateLimitInfo(2500, 2487, pytest.approx(0.042), 2000000, 1884221,
                                 pytest.approx(61.5))
    assert info.refill_rate() == pytest.approx(13 / 0.042)


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3s", 3723.0), ("0.5", 0.5),
    ("250us", 250e-6),
])
def test_reset_formats(text: str, seconds: float) -> None:
    assert parse_reset(text) == pytest.approx(seconds)


def test_reset_as_timestamp_or_date_is_relative_to_now() -> None:
    assert parse_reset(str(time.time() + 30)) == pytest.approx(30, abs=1)
    when = datetime.now(UTC) + timedelta(seconds=20)
    assert parse_reset(when.isoformat().replace("+00:00", "Z")) == pytest.approx(20, abs=1)
    assert parse_reset(when.strftime("%a, %d %b %Y %H:%M:%S GMT")) == pytest.approx(20, abs=1)


@pytest.mark.parametrize("bad", ["", "soon", "5 parsecs", "1s2", "ms"])
def test_unparseable_resets_are_unknown(bad: str) -> None:
    assert parse_reset(bad) is None
    assert parse_duration(bad) is None


def test_kimi_ietf_and_anthropic_spellings() -> None:
    kimi = parse_rate_limit_headers(CIMultiDict(
        {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"}))
    assert kimi == RateLimitInfo(60, 0, 2.0)
    ietf = parse_rate_limit_headers(CIMultiDict(
        {"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "7", "RateLimit-Reset": "5"}))
    assert ietf == RateLimitInfo(100, 7, 5.0)
    reset = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    claude = parse_rate_limit_headers(CIMultiDict({
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": reset}))
    assert claude is not None and claude.remaining_requests == 49
    assert claude.reset_requests_s == pytest.approx(10, abs=1)


def test_absent_or_garbage_headers() -> None:
    assert parse_rate_limit_headers(CIMultiDict({"content-type": "text/plain"})) is None
    info = parse_rate_limit_headers(CIMultiDict(
        {"x-ratelimit-remaining-requests": "12", "x-ratelimit-limit-requests": "lots",
         "x-ratelimit-reset-requests": "whenever"}))
    assert info == RateLimitInfo(None, 12, None)
    assert info.refill_rate() is None
    assert RateLimitInfo(10, 10, 1.0).refill_rate() is None  # nothing spent: no rate to infer


async def test_provider_yields_limits_first_and_attaches_them_to_429(openai_server) -> None:
    answers = iter([Reply(text="hi"), RateLimitError("quota", retry_after=0.5)])
    server = await openai_server(lambda c: next(answers))
    server.headers = lambda: {"x-ratelimit-limit-requests": "60",
                              "x-ratelimit-remaining-requests": "3",
                              "x-ratelimit-reset-requests": "57s"}
    async with OpenAICompatProvider(server.base_url, "m",
                                    retry=RetryPolicy(retry_rate_limits=False)) as provider:
        stream = provider.generate([user("x")])
        parts = [p async for p in stream]
        assert isinstance(parts[0], RateLimitDelta) and parts[0].info.remaining_requests == 3
        assert stream.completion().message.content == "hi"  # not part of the message
        with pytest.raises(RateLimitError) as err:
            await provider.generate([user("y")]).collect()
    assert err.value.retry_after == 0.5
    assert err.value.limits == RateLimitInfo(60, 3, 57.0)
