"""`--endpoint NAME=URL[,model=M,key=ENV,price_in=..,price_out=..,...]`: what one target is.

Prices are dollars per million tokens, as every price list quotes them; the key is the *name*
of an environment variable so that no secret lands in a shell history, a cache or a report.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

_FLOAT_FIELDS = ("price_in", "price_out", "price_cached")
_INT_FIELDS = ("concurrency",)
_STR_FIELDS = ("model", "key", "tokenizer")


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoint:
    """One OpenAI-compatible target of an eval run."""

    name: str
    """Label in reports (and part of the cache key)."""
    url: str
    """Base URL ending before `/chat/completions`, e.g. `http://127.0.0.1:8000/v1`."""
    model: str = "default"
    """Model id sent in every request."""
    key: str | None = None
    """Environment variable holding the bearer key (the value is never stored)."""
    price_in: float = 0.0
    """$ per 1M uncached prompt tokens."""
    price_out: float = 0.0
    """$ per 1M completion tokens."""
    price_cached: float | None = None
    """$ per 1M cached prompt tokens (default: the uncached price)."""
    concurrency: int = 4
    """Requests in flight to this endpoint at most."""
    tokenizer: str | None = None
    """The served model's vocabulary, if known: `bundled` (openk2's 8192-id one) or a
    directory with a Kimi `tiktoken.model`; lets preflight check `prompt_tokens` exactly."""

    def prompt_token_counts(self, messages: list[dict[str, Any]],
                            tools: list[dict[str, Any]]) -> list[int] | None:
        """What `usage.prompt_tokens` must be under the K2.6 chat template (thinking and
        instant renderings differ in the generation prompt; either is right)."""
        if self.tokenizer is None:
            return None
        from openk2.tokenizer.chat.template import encode_chat

        tok = _load_tokenizer(self.tokenizer)
        return sorted({len(encode_chat(tok, messages, tools or None, thinking=t))
                       for t in (True, False)})

    def api_key(self) -> str | None:
        """The bearer key from the environment; an unset variable is an error, not silence."""
        if self.key is None:
            return None
        value = os.environ.get(self.key)
        if value is None:
            raise ValueError(f"endpoint {self.name!r}: environment variable {self.key} is unset")
        return value

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """Dollars for one call's usage at this endpoint's prices."""
        cached_price = self.price_in if self.price_cached is None else self.price_cached
        uncached = max(prompt_tokens - cached_tokens, 0)
        total = uncached * self.price_in + cached_tokens * cached_price
        return (total + completion_tokens * self.price_out) / 1e6


def parse_endpoint(text: str) -> Endpoint:
    """Parse `NAME=URL[,field=value...]`; unknown fields and bad numbers are errors."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--endpoint must look like NAME=URL[,model=M,...], got {text!r}")
    url, *pairs = rest.split(",")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"endpoint {name!r}: URL must start with http:// or https://: {url!r}")
    fields: dict[str, object] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValueError(f"endpoint {name!r}: expected field=value, got {pair!r}")
        fields[key.strip()] = _field_value(name, key.strip(), value.strip())
    return Endpoint(name=name.strip(), url=url.rstrip("/"), **fields)  # type: ignore[arg-type]


def _field_value(endpoint: str, key: str, value: str) -> object:
    try:
        if key in _FLOAT_FIELDS:
            number = float(value)
            if number < 0:
                raise ValueError("a price cannot be negative")
            return number
        if key in _INT_FIELDS:
            count = int(value)
            if count < 1:
                raise ValueError("must be at least 1")
            return count
    except ValueError as exc:
        raise ValueError(f"endpoint {endpoint!r}: bad {key}={value!r}: {exc}") from exc
    if key in _STR_FIELDS:
        return value
    known = ", ".join(_STR_FIELDS + _FLOAT_FIELDS + _INT_FIELDS)
    raise ValueError(f"endpoint {endpoint!r}: unknown field {key!r} (known: {known})")


@functools.lru_cache(maxsize=4)
def _load_tokenizer(spec: str) -> Any:
    from openk2.tokenizer import Tokenizer, default_tokenizer

    return default_tokenizer() if spec == "bundled" else Tokenizer.from_pretrained(spec)
