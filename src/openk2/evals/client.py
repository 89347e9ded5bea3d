"""One endpoint as the runner sees it: cached, concurrency-capped, paced, retried calls.

Chat calls go through `openk2.agent`'s `OpenAICompatProvider` (SSE parsing, 5xx backoff)
wrapped in the swarm's `ScheduledProvider` (an AIMD concurrency cap and the `RatePacer`, which
honours `Retry-After` for every call to the endpoint and learns its rate from 429s), so an
eval of a rate-limited API behaves like a swarm run against it. Raw calls (preflight) share
the same pacer. A failure after the provider's own retries (a stream cut short, a stream that
ends without a finish reason) is retried here `attempts` times in all; what still fails
becomes an `{"error": ...}` answer, which is logged and never cached.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from openk2.agent.llm.message import Message, ToolSpec
from openk2.agent.llm.openai_compat import OpenAICompatProvider, RetryPolicy, parse_retry_after
from openk2.agent.llm.provider import GenerationSettings, ProviderError
from openk2.agent.llm.ratelimits import parse_rate_limit_headers
from openk2.agent.swarm.pacing import RatePacer
from openk2.agent.swarm.scheduler import AdaptiveLimiter, BackoffPolicy, ScheduledProvider
from openk2.evals.cache import AnswerCache, request_key
from openk2.evals.calls import Answer, Call
from openk2.evals.endpoints import Endpoint

_SETTINGS = ("temperature", "top_p", "max_tokens")


@dataclass(kw_only=True, slots=True)
class RetryConfig:
    """How hard the runner tries before a call counts as an endpoint error."""

    attempts: int = 3
    """Whole-call tries at the eval level (each over the provider's own retries)."""
    http_attempts: int = 4
    """Provider-level tries per call on 5xx/timeouts before any byte arrived."""
    base_delay_s: float = 0.5
    """First backoff; doubles per retry (a `Retry-After` wins)."""
    max_rate_limit_retries: int = 12
    """429s one call may absorb."""
    timeout_s: float = 600.0
    """Longest silence while reading an answer."""


class CallError(Exception):
    """A call failed in a way a retry may fix."""


class EndpointClient:
    """Cached calls to one endpoint; `requests` counts what was actually sent."""

    def __init__(self, endpoint: Endpoint, cache: AnswerCache, retry: RetryConfig) -> None:
        self.endpoint = endpoint
        self.cache = cache
        self.retry = retry
        self.pacer = RatePacer()
        self.limiter = AdaptiveLimiter(endpoint.concurrency)
        self._slots = asyncio.Semaphore(endpoint.concurrency)
        self.requests = 0
        self.errors = 0
        key = endpoint.api_key()
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._providers = {s: self._scheduled(s, key) for s in (False, True)}
        self._session: aiohttp.ClientSession | None = None

    def _scheduled(self, stream: bool, key: str | None) -> ScheduledProvider:
        r = self.retry
        inner = OpenAICompatProvider(
            self.endpoint.url, self.endpoint.model, key, stream=stream,
            retry=RetryPolicy(max_attempts=r.http_attempts, base_delay=r.base_delay_s,
                              retry_rate_limits=False),
        )
        inner.timeouts.read = r.timeout_s
        backoff = BackoffPolicy(base_s=r.base_delay_s, max_retries=r.max_rate_limit_retries)
        return ScheduledProvider(inner, self.limiter, pacer=self.pacer, backoff=backoff)

    async def answer(self, call: Call, epoch: int = 0, slot: int = 0) -> tuple[Answer, bool]:
        """The endpoint's answer to `call` (from the cache if known) and whether it was cached."""
        ep = self.endpoint
        key = request_key(ep.name, ep.url, ep.model, call.to_json(), epoch, slot)
        hit = self.cache.get(key)
        if hit is not None:
            return hit, True
        async with self._slots:  # latency runs from here: queueing behind our own calls is
            answer = await self._fresh(call)  # not the endpoint's, pacing after 429s is
        if "error" in answer:
            self.errors += 1
        else:
            self.cache.put(key, ep.name, answer)
        return answer, False

    async def _fresh(self, call: Call) -> Answer:
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await (self._raw(call) if call.raw else self._chat(call))
            except (ProviderError, CallError, aiohttp.ClientError, TimeoutError,
                    ValueError) as exc:  # ValueError: a body or chunk that is not JSON
                last = f"{type(exc).__name__}: {exc}"
                if getattr(exc, "retryable", True) is False:
                    break
                await asyncio.sleep(self.retry.base_delay_s * 2 ** (attempt - 1))
        return {"error": last}

    async def _chat(self, call: Call) -> Answer:
        messages = [Message.from_openai(m) for m in call.messages]
        tools = [_tool_spec(t) for t in call.tools]
        settings = GenerationSettings(
            **{k: call.params[k] for k in _SETTINGS if k in call.params},
            extra_body={k: v for k, v in call.params.items() if k not in _SETTINGS},
        )
        self.requests += 1
        start = time.perf_counter()
        ttft: float | None = None
        stream = self._providers[call.stream].generate(messages, tools, settings)
        async for _ in stream:
            ttft = ttft if ttft is not None else time.perf_counter() - start
        done = stream.completion()
        if done.finish_reason is None:
            raise CallError("the answer ended without a finish_reason (stream cut short)")
        return {"message": done.message.to_openai(), "finish_reason": done.finish_reason,
                "usage": done.usage.to_dict(), "latency_s": time.perf_counter() - start,
                "ttft_s": ttft, "t_end": time.time()}

    async def _raw(self, call: Call) -> Answer:
        rate_limited = 0
        while True:
            await self.limiter.acquire()
            try:
                sent_at, send_no = await self.pacer.acquire()
                self.requests += 1
                answer = await self._raw_once(call)
            finally:
                self.limiter.release()
            status, retry_after = answer.get("status"), answer.pop("_retry_after", None)
            if status == 429:
                rate_limited += 1
                if rate_limited > self.retry.max_rate_limit_retries:
                    raise CallError("HTTP 429: still rate limited after retries")
                self.pacer.on_rate_limit(sent_at, send_no, retry_after)
                await asyncio.sleep(BackoffPolicy(base_s=self.retry.base_delay_s).delay(
                    rate_limited, retry_after))
                continue
            if isinstance(status, int) and status >= 500:
                raise CallError(f"HTTP {status}")
            self.pacer.on_success()
            return answer

    async def _raw_once(self, call: Call) -> Answer:
        session = self._get_session()
        start = time.perf_counter()
        url = f"{self.endpoint.url}/chat/completions"
        try:
            async with session.post(url, json=call.body(self.endpoint.model),
                                    headers=self._headers) as resp:
                limits = parse_rate_limit_headers(resp.headers)
                if limits is not None:
                    self.pacer.observe(limits)
                if resp.status != 200:
                    return {"status": resp.status, "body": (await resp.text())[:2000],
                            "_retry_after": parse_retry_after(resp.headers)}
                if call.stream:
                    answer = await _read_stream(resp, start)
                else:
                    answer = _from_full(await resp.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CallError(f"{type(exc).__name__}: {exc}") from exc
        answer["latency_s"] = time.perf_counter() - start
        answer["t_end"] = time.time()
        return answer

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(sock_read=self.retry.timeout_s, sock_connect=10)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def aclose(self) -> None:
        """Close every HTTP session this client opened."""
        if self._session is not None:
            await self._session.close()
        for provider in self._providers.values():
            await provider.inner.aclose()  # type: ignore[attr-defined]


def _tool_spec(tool: dict[str, Any]) -> ToolSpec:
    fn = tool.get("function") or {}
    return ToolSpec(str(fn.get("name", "")), str(fn.get("description", "")),
                    dict(fn.get("parameters") or {}))


def _from_full(data: dict[str, Any]) -> Answer:
    """A non-streamed raw answer: every choice kept, the first one as `message`."""
    choices = list(data.get("choices") or [])
    first = choices[0] if choices else {}
    return {"status": 200, "choices": choices, "message": first.get("message") or {},
            "finish_reason": first.get("finish_reason"), "usage": data.get("usage") or {}}


async def _read_stream(resp: aiohttp.ClientResponse, start: float) -> Answer:
    """Join SSE chunks per choice index; note the first byte and whether `[DONE]` came."""
    choices: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    ttft: float | None = None
    done = False
    async for raw in resp.content:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue
        ttft = ttft if ttft is not None else time.perf_counter() - start
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        chunk = json.loads(data)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            _merge_choice(choices.setdefault(int(choice.get("index", 0)), _empty()), choice)
    ordered = [choices[i] for i in sorted(choices)]
    first = ordered[0] if ordered else {"message": {}, "finish_reason": None}
    return {"status": 200, "choices": ordered, "message": first["message"],
            "finish_reason": first["finish_reason"], "usage": usage, "done": done,
            "ttft_s": ttft}


def _empty() -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": ""}, "finish_reason": None,
            "logprobs": None}


def _merge_choice(into: dict[str, Any], choice: dict[str, Any]) -> None:
    delta = choice.get("delta") or {}
    message = into["message"]
    message["content"] += delta.get("content") or ""
    for call in delta.get("tool_calls") or ():
        calls = message.setdefault("tool_calls", [])
        index = int(call.get("index", len(calls)))
        while len(calls) <= index:
            calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        fn = call.get("function") or {}
        calls[index]["id"] = call.get("id") or calls[index]["id"]
        calls[index]["function"]["name"] += fn.get("name") or ""
        calls[index]["function"]["arguments"] += fn.get("arguments") or ""
    if choice.get("finish_reason"):
        into["finish_reason"] = choice["finish_reason"]
    logprobs = (choice.get("logprobs") or {}).get("content")
    if logprobs:
        into["logprobs"] = {"content": (into["logprobs"] or {}).get("content", []) + logprobs}
