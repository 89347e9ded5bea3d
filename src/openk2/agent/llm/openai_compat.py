"""`ChatProvider` for any OpenAI-compatible server (Kimi API, vLLM, SGLang, openk2 serve).

Streams over SSE with aiohttp: in our measurements httpx's pool collapses past a few hundred
in-flight requests on a 2-core machine while aiohttp stays near ideal (benchmarks/README.md,
"HTTP clients"), and a swarm keeps up to 300 calls in flight. Requests ask for
`stream_options.include_usage` so usage arrives on the last chunk. Failures before the first
delta are retried with exponential backoff that honours `Retry-After`; once deltas have been
yielded a failure is raised, because a half-consumed stream cannot be replayed. Rate-limit
headers (`x-ratelimit-*` and kin) become a `RateLimitDelta` ahead of the content, and ride on
a `RateLimitError`, so a scheduler can pace calls by what the server reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from openk2.agent.llm.message import Message, ToolSpec, Usage
from openk2.agent.llm.provider import (
    FinishDelta,
    GenerationSettings,
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitDelta,
    RateLimitError,
    ReasoningDelta,
    StreamedMessage,
    StreamPart,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from openk2.agent.llm.ratelimits import parse_rate_limit_headers


@dataclass(kw_only=True, slots=True)
class RetryPolicy:
    """When and how long to retry a failed call before any delta was received."""

    max_attempts: int = 4
    """Total tries per call, the first included."""
    base_delay: float = 0.5
    """First backoff in seconds; doubles each retry."""
    max_delay: float = 30.0
    """Cap on one backoff (also caps an absurd `Retry-After`)."""
    retry_rate_limits: bool = True
    """Retry 429s here; the swarm turns this off and lets its AIMD scheduler handle them."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try `attempt + 1`; `Retry-After` wins when given."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        backoff = self.base_delay * 2 ** (attempt - 1)
        return min(backoff * random.uniform(0.8, 1.2), self.max_delay)


@dataclass(kw_only=True, slots=True)
class Timeouts:
    """Network timeouts in seconds (`None` = no limit)."""

    connect: float | None = 10.0
    """Opening the TCP/TLS connection."""
    read: float | None = 300.0
    """Longest silence between two bytes of the response (thinking models pause long)."""
    total: float | None = None
    """Whole call, streaming included."""


class OpenAICompatProvider:
    """Chat completions over HTTP(S) with SSE streaming; one aiohttp session per event loop."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 0,
        include_usage: bool = True,
        stream: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.include_usage = include_usage
        self.stream = stream
        self._max_connections = max_connections
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    @property
    def model_name(self) -> str:
        """The model id sent in every request."""
        return self.model

    def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        settings: GenerationSettings | None = None,
    ) -> StreamedMessage:
        """Start a streamed chat completion (sent when first iterated)."""
        body = self.request_body(messages, tools, settings or GenerationSettings())
        return StreamedMessage(self._with_retries(body), self.model)

    def request_body(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], settings: GenerationSettings
    ) -> dict[str, Any]:
        """The JSON body of a `/chat/completions` request."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_openai() for m in messages],
            "stream": self.stream,
        }
        if self.stream and self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
        for key in ("temperature", "top_p", "max_tokens"):
            value = getattr(settings, key)
            if value is not None:
                body[key] = value
        body.update(settings.extra_body)
        return body

    async def _with_retries(self, body: dict[str, Any]) -> AsyncIterator[StreamPart]:
        attempt = 0
        while True:
            attempt += 1
            yielded = False
            try:
                async for part in self._once(body):
                    yielded = yielded or not isinstance(part, RateLimitDelta)
                    yield part
                return
            except ProviderError as exc:
                if yielded or not self._should_retry(exc, attempt):
                    raise
                retry_after = getattr(exc, "retry_after", None)
                await asyncio.sleep(self.retry.delay(attempt, retry_after))

    def _should_retry(self, exc: ProviderError, attempt: int) -> bool:
        if attempt >= self.retry.max_attempts or not exc.retryable:
            return False
        return self.retry.retry_rate_limits or not isinstance(exc, RateLimitError)

    async def _once(self, body: dict[str, Any]) -> AsyncIterator[StreamPart]:
        session = self._get_session()
        url = f"{self.base_url}/chat/completions"
        try:
            async with session.post(url, json=body, headers=self._headers) as resp:
                if resp.status != 200:
                    raise await _status_error(resp)
                limits = parse_rate_limit_headers(resp.headers)
                if limits is not None:
                    yield RateLimitDelta(limits)
                if resp.content_type == "application/json":
                    for part in _ChunkParser().parse(await resp.json(content_type=None)):
                        yield part
                    return
                async for part in _sse_parts(resp):
                    yield part
        except TimeoutError as exc:
            raise ProviderTimeoutError(f"timed out talking to {url}") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ProviderConnectionError(f"connection to {url} failed: {exc}") from exc

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the live HTTP session (remote swarm backends ship the provider to
        workers, which open their own session on first use)."""
        return self.__dict__ | {"_session": None, "_session_loop": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            t = self.timeouts
            timeout = aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect, sock_read=t.read)
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            session = aiohttp.ClientSession(timeout=timeout, connector=connector)
            self._session, self._session_loop = session, loop
        return session

    async def aclose(self) -> None:
        """Close the HTTP session (safe to call twice)."""
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # session of a loop that is gone
                await self._session.close()
        self._session = None

    async def __aenter__(self) -> OpenAICompatProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _status_error(resp: aiohttp.ClientResponse) -> ProviderStatusError:
    text = await resp.text(errors="replace")
    retry_after = parse_retry_after(resp.headers)
    if resp.status == 429:
        return RateLimitError(text, retry_after, parse_rate_limit_headers(resp.headers))
    return ProviderStatusError(resp.status, text, retry_after)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (delta-seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        with contextlib.suppress(ValueError):
            return float(ms) / 1000.0
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        date = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return None if date is None else max(0.0, date.timestamp() - time.time())


async def _sse_parts(resp: aiohttp.ClientResponse) -> AsyncIterator[StreamPart]:
    """Parse `data:` lines of an SSE body into stream parts until `[DONE]`."""
    parser = _ChunkParser()
    async for raw in resp.content:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue  # blank separators, comments, `event:` lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProviderResponseError(f"invalid JSON in SSE chunk: {data[:200]}") from exc
        for part in parser.parse(chunk):
            yield part


class _ChunkParser:
    """Turns OpenAI chunks (or a whole non-streamed response) into parts.

    Keeps state so that servers which omit `tool_calls[i].index` still get one slot per call.
    """

    def __init__(self) -> None:
        self._ids: list[str] = []

    def parse(self, chunk: dict[str, Any]) -> list[StreamPart]:
        if "error" in chunk and not chunk.get("choices"):
            raise ProviderResponseError(f"server error in stream: {chunk['error']}")
        parts: list[StreamPart] = []
        choices = chunk.get("choices") or ()
        if choices:
            self._parse_choice(choices[0], parts)
        if chunk.get("usage"):
            parts.append(UsageDelta(Usage.from_openai(chunk["usage"])))
        return parts

    def _parse_choice(self, choice: dict[str, Any], parts: list[StreamPart]) -> None:
        delta = choice.get("delta") or choice.get("message") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            parts.append(ReasoningDelta(reasoning))
        if delta.get("content"):
            parts.append(TextDelta(delta["content"]))
        for call in delta.get("tool_calls") or ():
            parts.append(self._tool_delta(call))
        if choice.get("finish_reason"):
            parts.append(FinishDelta(choice["finish_reason"]))

    def _tool_delta(self, call: dict[str, Any]) -> ToolCallDelta:
        fn = call.get("function") or {}
        args = fn.get("arguments") or ""
        if not isinstance(args, str):
            args = json.dumps(args)
        call_id = call.get("id")
        if "index" in call:
            index = int(call["index"])
        elif call_id and call_id not in self._ids:
            index = len(self._ids)
        else:
            index = max(len(self._ids) - 1, 0)
        if call_id and call_id not in self._ids:
            self._ids.append(call_id)
        return ToolCallDelta(index=index, id=call_id, name=fn.get("name"), arguments=args)
