"""The OpenAI-compatible provider against a real local HTTP server."""

from __future__ import annotations

import asyncio
import time

import pytest

from openk2.agent.llm import (
    Message,
    ProviderConnectionError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
    ReasoningDelta,
    TextDelta,
    ToolSpec,
    Usage,
    user,
)
from openk2.agent.llm.openai_compat import (
    OpenAICompatProvider,
    RetryPolicy,
    Timeouts,
    _ChunkParser,
    parse_retry_after,
)
from openk2.agent.llm.scripted import HANG, Reply, call

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01)


async def test_stream_assembles_reasoning_text_tool_calls_and_usage(openai_server) -> None:
    reply = Reply(
        text="Looking it up.",
        reasoning="I should search.",
        tool_calls=[call("search", 0, query="kimi"), call("open", 1, url="a://b")],
        usage=Usage(prompt_tokens=12, completion_tokens=7, cached_tokens=4),
        chunk=3,
    )
    server = await openai_server(lambda c: reply)
    provider = OpenAICompatProvider(server.base_url, "k2", api_key="sk-test")
    stream = provider.generate([user("hi")], [ToolSpec("search", "Search.", {"type": "object"})])
    kinds = [type(p) async for p in stream]
    done = stream.completion()
    await provider.aclose()
    assert ReasoningDelta in kinds and kinds.count(TextDelta) == 5
    assert done.message.content == "Looking it up."
    assert done.message.reasoning_content == "I should search."
    assert [c.id for c in done.message.tool_calls] == ["functions.search:0", "functions.open:1"]
    assert done.message.tool_calls[0].arguments == '{"query": "kimi"}'
    assert done.usage == Usage(12, 7, 4) and done.finish_reason == "tool_calls"
    body = server.requests[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"][0]["function"]["name"] == "search"


async def test_history_sends_reasoning_content_back(openai_server) -> None:
    server = await openai_server(lambda c: Reply(text="ok"))
    provider = OpenAICompatProvider(server.base_url, "k2")
    prior = Message(role="assistant", content="", reasoning_content="think",
                    tool_calls=(call("search", 0, q="x"),))
    answer = Message(role="tool", content="r", tool_call_id="functions.search:0")
    history = [user("q"), prior, answer]
    await provider.generate(history).collect()
    await provider.aclose()
    sent = server.requests[0]["messages"]
    assert sent[1]["reasoning_content"] == "think"
    assert sent[1]["tool_calls"][0]["id"] == "functions.search:0"
    assert sent[2] == {"role": "tool", "content": "r", "tool_call_id": "functions.search:0"}


async def test_rate_limit_is_retried_after_retry_after(openai_server) -> None:
    script = iter([RateLimitError("slow down", retry_after=0.3), Reply(text="fine")])
    server = await openai_server(lambda c: next(script))
    provider = OpenAICompatProvider(server.base_url, "k2", retry=FAST_RETRY)
    start = time.monotonic()
    done = await provider.generate([user("hi")]).collect()
    await provider.aclose()
    assert done.message.content == "fine" and len(server.requests) == 2
    assert time.monotonic() - start >= 0.3


async def test_rate_limit_surfaces_when_retries_are_off(openai_server) -> None:
    server = await openai_server(lambda c: RateLimitError("busy", retry_after=7))
    retry = RetryPolicy(retry_rate_limits=False)
    provider = OpenAICompatProvider(server.base_url, "k2", retry=retry)
    with pytest.raises(RateLimitError) as info:
        await provider.generate([user("hi")]).collect()
    await provider.aclose()
    assert info.value.retry_after == 7.0 and len(server.requests) == 1


async def test_client_error_is_not_retried_and_server_error_is(openai_server) -> None:
    bad = await openai_server(lambda c: ProviderStatusError(400, "bad tool schema"))
    provider = OpenAICompatProvider(bad.base_url, "k2", retry=FAST_RETRY)
    with pytest.raises(ProviderStatusError, match="bad tool schema"):
        await provider.generate([user("hi")]).collect()
    assert len(bad.requests) == 1
    broken = await openai_server(lambda c: ProviderStatusError(503, "overloaded"))
    provider = OpenAICompatProvider(broken.base_url, "k2", retry=FAST_RETRY)
    with pytest.raises(ProviderStatusError) as info:
        await provider.generate([user("hi")]).collect()
    await provider.aclose()
    assert info.value.status == 503 and len(broken.requests) == 3


async def test_non_streaming_json_answer_is_accepted(openai_server) -> None:
    server = await openai_server(lambda c: Reply(text="whole", tool_calls=[call("f", 0, a=1)]))
    provider = OpenAICompatProvider(server.base_url, "k2", stream=False)
    done = await provider.generate([user("x")]).collect()
    await provider.aclose()
    assert server.requests[0]["stream"] is False and "stream_options" not in server.requests[0]
    assert done.message.content == "whole" and done.message.tool_calls[0].name == "f"
    assert done.usage.total_tokens > 0


async def test_read_timeout_and_refused_connection(openai_server) -> None:
    server = await openai_server(lambda c: HANG)
    provider = OpenAICompatProvider(
        server.base_url, "k2", timeouts=Timeouts(read=0.2), retry=RetryPolicy(max_attempts=1)
    )
    with pytest.raises(ProviderTimeoutError):
        await provider.generate([user("hi")]).collect()
    await provider.aclose()
    dead = OpenAICompatProvider("http://127.0.0.1:9/v1", "k2", retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ProviderConnectionError):
        await dead.generate([user("hi")]).collect()
    await dead.aclose()


async def test_three_hundred_requests_in_flight(openai_server) -> None:
    async def slow(c):
        await asyncio.sleep(0.3)
        return Reply(text=c.messages[-1].content)

    server = await openai_server(slow)
    provider = OpenAICompatProvider(server.base_url, "k2")
    outs = await asyncio.gather(
        *(provider.generate([user(str(i))]).collect() for i in range(300))
    )
    await provider.aclose()
    assert [o.message.content for o in outs] == [str(i) for i in range(300)]


def test_bad_base_url_and_retry_after_forms() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAICompatProvider("localhost:8000", "k2")
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None


def test_tool_calls_without_index_get_one_slot_each() -> None:
    parser = _ChunkParser()
    first = {"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "f"}}]}}]}
    more = {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "{}"}}]}}]}
    second = {"choices": [{"delta": {"tool_calls": [{"id": "b", "function": {"name": "g"}}]}}]}
    indexes = [p.index for c in (first, more, second) for p in parser.parse(c)]
    assert indexes == [0, 0, 1]


async def test_a_provider_in_use_pickles_for_remote_workers(openai_server) -> None:
    import pickle

    server = await openai_server(lambda c: Reply(text="hi"))
    provider = OpenAICompatProvider(server.base_url, "k2", api_key="sk-x")
    await provider.generate([user("x")]).collect()  # opens the live HTTP session
    copy = pickle.loads(pickle.dumps(provider))
    done = await copy.generate([user("y")]).collect()  # the copy opens its own
    await provider.aclose()
    await copy.aclose()
    assert done.message.content == "hi" and copy.model == "k2"
    assert server.requests[-1]["messages"][-1]["content"] == "y"
