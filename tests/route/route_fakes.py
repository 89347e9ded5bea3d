"""Fake upstreams for the route tests: an OpenAI-compatible endpoint that answers with its
name (plain or streamed, with usage), fails with a status, hangs, or echoes what it got."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


class Upstream:
    """A fake deployment: answers with its name after `delay_s`, or fails with `status`
    (a 400 echoes the Authorization header it got, as a careless upstream might); with
    `cut` a streamed answer breaks off after its first chunk."""

    def __init__(self, name: str, status: int = 200, hang: bool = False,
                 delay_s: float = 0.0, cut: bool = False) -> None:
        self.name, self.status, self.calls, self.hang = name, status, 0, hang
        self.delay_s, self.cut = delay_s, cut
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str | None] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls += 1
        self.bodies.append(body)
        self.auth.append(request.headers.get("Authorization"))
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay_s)
        if self.status == 400:
            return web.json_response({"error": {"message": "bad request; you sent "
                                                f"{request.headers.get('Authorization')}"}},
                                     status=400)
        if self.status != 200:
            return web.Response(status=self.status, text="down")
        message = {"role": "assistant", "content": f"from {self.name}"}
        if not body.get("stream"):
            return web.json_response({"choices": [{"index": 0, "message": message,
                                                   "finish_reason": "stop"}], "usage": USAGE})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in ({"choices": [{"index": 0, "delta": message}]},
                      {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                      {"choices": [], "usage": USAGE}):
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.cut:
                assert request.transport is not None
                request.transport.abort()
                return resp
        await resp.write(b"data: [DONE]\n\n")
        return resp


async def up_url(start: Callable[..., Any], up: Upstream) -> str:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", up.handle)
    return f"{await start(app)}/v1"


