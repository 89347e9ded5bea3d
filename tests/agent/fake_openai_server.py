"""A real HTTP server that speaks the OpenAI chat-completions protocol from a script.

It reuses the scripted provider's step types: a handler gets a `ChatCall` parsed from the
request body and returns a `Reply` (sent as SSE chunks, or one JSON object when the request
does not stream), a `ProviderStatusError`/`RateLimitError` (sent as that HTTP status with
`Retry-After`), or `HANG`. `headers` (a function of nothing) adds headers to every response,
e.g. `x-ratelimit-*` from a simulated quota. Tool-call deltas are split the way vLLM does (id
and name first, then argument fragments), and usage comes in a final chunk with empty
`choices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from openk2.agent.llm.message import Message, ToolSpec
from openk2.agent.llm.provider import ProviderStatusError
from openk2.agent.llm.scripted import ChatCall, Reply, Step, _Hang, synthetic_usage


class FakeOpenAIServer:
    """Serves `POST /v1/chat/completions` from `handler`; records request bodies."""

    def __init__(self, handler: Callable[[ChatCall], Any]) -> None:
        self.handler = handler
        self.headers: Callable[[], dict[str, str]] | None = None
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        real_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{real_port}/v1"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        messages = tuple(Message.from_openai(m) for m in body["messages"])
        tools = tuple(
            ToolSpec(t["function"]["name"], t["function"].get("description", ""),
                     t["function"].get("parameters", {}))
            for t in body.get("tools", ())
        )
        step: Step = self.handler(ChatCall(len(self.requests) - 1, messages, tools, None))
        if inspect.isawaitable(step):
            step = await step
        if isinstance(step, _Hang):
            await asyncio.Event().wait()
        extra = self.headers() if self.headers is not None else {}
        if isinstance(step, ProviderStatusError):
            if step.retry_after is not None:
                extra["Retry-After"] = str(step.retry_after)
            return web.Response(status=step.status, text=step.body, headers=extra)
        assert isinstance(step, Reply)
        if step.delay:
            await asyncio.sleep(step.delay)
        usage = (step.usage or synthetic_usage(step, messages)).to_dict()
        if not body.get("stream"):
            return web.json_response(_full_response(step, usage), headers=extra)
        return await self._stream(request, step, usage, body, extra)

    async def _stream(
        self, request: web.Request, step: Reply, usage: dict[str, int], body: dict[str, Any],
        extra: dict[str, str],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **extra})
        await resp.prepare(request)
        for delta in _deltas(step):
            await _send(resp, {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        reason = "tool_calls" if step.tool_calls else "stop"
        await _send(resp, {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await _send(resp, {"choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


async def _send(resp: web.StreamResponse, chunk: dict[str, Any]) -> None:
    chunk.update({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "fake"})
    await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())


def _deltas(step: Reply) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if step.reasoning:
        half = len(step.reasoning) // 2
        out += [{"reasoning_content": step.reasoning[:half]},
                {"reasoning_content": step.reasoning[half:]}]
    size = step.chunk or len(step.text) or 1
    out += [{"content": step.text[i : i + size]} for i in range(0, len(step.text), size)]
    for i, tc in enumerate(step.tool_calls):
        head = {"index": i, "id": tc.id, "type": "function",
                "function": {"name": tc.name, "arguments": ""}}
        out.append({"tool_calls": [head]})
        mid = len(tc.arguments) // 2
        for piece in (tc.arguments[:mid], tc.arguments[mid:]):
            out.append({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    return out


def _full_response(step: Reply, usage: dict[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.text}
    if step.reasoning:
        message["reasoning_content"] = step.reasoning
    if step.tool_calls:
        message["tool_calls"] = [tc.to_openai() for tc in step.tool_calls]
    reason = "tool_calls" if step.tool_calls else "stop"
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
        "usage": usage,
    }


@contextlib.asynccontextmanager
async def fake_servers() -> AsyncIterator[Callable[..., Awaitable[FakeOpenAIServer]]]:
    """Factory of started servers (`server = await make(handler)`), all stopped on exit."""
    started: list[FakeOpenAIServer] = []

    async def make(handler: Callable[..., Any]) -> FakeOpenAIServer:
        server = FakeOpenAIServer(handler)
        await server.start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            await server.stop()
