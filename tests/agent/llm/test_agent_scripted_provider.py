"""The scripted provider: list and function scripts, errors, hangs, streaming parts."""

from __future__ import annotations

import asyncio

import pytest

from openk2.agent.llm import RateLimitError, TextDelta, user
from openk2.agent.llm.scripted import (
    HANG,
    Reply,
    ScriptedProvider,
    ScriptExhaustedError,
    call,
)


async def test_list_script_plays_in_order_then_reports_exhaustion() -> None:
    provider = ScriptedProvider([Reply(text="one"), Reply(tool_calls=[call("f", 0, x=1)])])
    first = await provider.generate([user("a")]).collect()
    second = await provider.generate([user("b")]).collect()
    assert first.message.content == "one" and first.finish_reason == "stop"
    assert second.message.tool_calls[0].id == "functions.f:0"
    assert second.finish_reason == "tool_calls"
    with pytest.raises(ScriptExhaustedError, match="only 2 steps"):
        await provider.generate([user("c")]).collect()
    assert [c.messages[-1].content for c in provider.calls] == ["a", "b", "c"]


async def test_function_script_sees_the_call_and_may_be_async() -> None:
    async def echo(c):
        await asyncio.sleep(0)
        return Reply(text=c.messages[-1].content.upper(), chunk=2)

    provider = ScriptedProvider(echo)
    stream = provider.generate([user("hello")])
    texts = [p.text async for p in stream if isinstance(p, TextDelta)]
    assert texts == ["HE", "LL", "O"]
    assert stream.completion().usage.prompt_tokens == 2  # 5 chars // 4 + 1


async def test_exception_and_hang_steps() -> None:
    provider = ScriptedProvider([RateLimitError(retry_after=1.5), HANG])
    with pytest.raises(RateLimitError):
        await provider.generate([user("a")]).collect()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.generate([user("b")]).collect(), 0.05)


async def test_stream_cannot_be_consumed_twice() -> None:
    stream = ScriptedProvider([Reply(text="x")]).generate([user("a")])
    await stream.collect()
    assert (await stream.collect()).message.content == "x"
    with pytest.raises(RuntimeError, match="only once"):
        async for _ in stream:
            pass
