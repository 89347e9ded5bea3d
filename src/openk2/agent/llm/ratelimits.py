"""Rate-limit state that servers report in response headers, parsed into one shape.

Providers differ in spelling, not in meaning. OpenAI and most OpenAI-compatible gateways send
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` with Go-style durations for the reset
("1s", "6m0s", "42ms"); Kimi's API documents `X-RateLimit-{Limit,Remaining,Reset}`; the IETF
draft says `RateLimit-{Limit,Remaining,Reset}` in delta-seconds; Anthropic sends
`anthropic-ratelimit-requests-*` with an RFC 3339 reset time. A client that paces its calls
needs the same three numbers from all of them: how many requests the window allows, how many
are left, and in how many seconds the quota is back.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_EPOCH_THRESHOLD = 1e9
"""A reset value this large is a Unix timestamp, not a number of seconds (year 2001+)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

_REQUEST_NAMES = (
    ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
     "x-ratelimit-reset-requests"),
    ("anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
     "anthropic-ratelimit-requests-reset"),
    ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
    ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
)
_TOKEN_NAMES = (
    ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining",
     "anthropic-ratelimit-tokens-reset"),
)


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """A server's rate-limit state at one response (any field may be unknown)."""

    limit_requests: int | None = None
    """Requests the window allows."""
    remaining_requests: int | None = None
    """Requests left in the window."""
    reset_requests_s: float | None = None
    """Seconds until the request quota is whole again."""
    limit_tokens: int | None = None
    """Tokens the window allows."""
    remaining_tokens: int | None = None
    """Tokens left in the window."""
    reset_tokens_s: float | None = None
    """Seconds until the token quota is whole again."""

    @property
    def empty(self) -> bool:
        """True when the headers said nothing about rate limits."""
        return self.remaining_requests is None and self.remaining_tokens is None

    def refill_rate(self) -> float | None:
        """Requests per second the quota refills at, if it refills continuously.

        OpenAI-style `reset` is the time until the quota is whole again, so the spent part
        (`limit - remaining`) comes back in `reset` seconds. For a fixed window this is the
        spent part over the time left, which is of the same order; the pacer only uses it as
        a starting point and corrects it from the 429s it sees.
        """
        limit, remaining, reset = (self.limit_requests, self.remaining_requests,
                                   self.reset_requests_s)
        if limit is None or remaining is None or reset is None or reset <= 0:
            return None
        if remaining >= limit:
            return None
        return (limit - remaining) / reset


def parse_rate_limit_headers(headers: Any) -> RateLimitInfo | None:
    """The rate-limit state in `headers` (a case-insensitive mapping), or None if absent."""
    req = _triple(headers, _REQUEST_NAMES)
    tok = _triple(headers, _TOKEN_NAMES)
    info = RateLimitInfo(*req, *tok)
    return None if info.empty else info


def parse_reset(value: str) -> float | None:
    """Seconds until a reset given as delta-seconds, a Go duration, a timestamp or a date."""
    text = value.strip()
    if not text:
        return None
    with contextlib.suppress(ValueError):
        number = float(text)
        return max(0.0, number - time.time()) if number > _EPOCH_THRESHOLD else max(0.0, number)
    duration = parse_duration(text)
    if duration is not None:
        return duration
    return _parse_date(text)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration such as `6m0s`, `1.5s` or `20ms` (None if not one)."""
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _parse_date(text: str) -> float | None:
    when: datetime | None = None
    with contextlib.suppress(ValueError, TypeError):
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when is None:
        with contextlib.suppress(ValueError, TypeError):
            when = email.utils.parsedate_to_datetime(text)
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _triple(
    headers: Any, names: tuple[tuple[str, str, str], ...]
) -> tuple[int | None, int | None, float | None]:
    """(limit, remaining, reset seconds) from the first spelling whose `remaining` is there."""
    for limit_name, remaining_name, reset_name in names:
        remaining = _int(headers.get(remaining_name))
        if remaining is None:
            continue
        reset_text = headers.get(reset_name)
        reset = parse_reset(reset_text) if reset_text is not None else None
        return _int(headers.get(limit_name)), remaining, reset
    return None, None, None


def _int(value: str | None) -> int | None:
    """An integer header; IETF-draft lists such as `100, 100;w=60` give their first item."""
    if value is None:
        return None
    head = value.split(",")[0].split(";")[0].strip()
    try:
        return int(float(head))
    except ValueError:
        return None
