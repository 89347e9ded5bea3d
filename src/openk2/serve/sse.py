"""Server-sent events and client-disconnect handling shared by the completion endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from openk2.serve.state import Slot

T = TypeVar("T")
DONE = "data: [DONE]\n\n"


class ClientDisconnected(Exception):
    """The client went away before a non-streaming answer was ready."""


def sse(payload: BaseModel | dict[str, Any]) -> str:
    """One `data:` event (None fields dropped, as OpenAI does for stream chunks)."""
    if hasattr(payload, "payload"):
        body = payload.payload()
    elif isinstance(payload, BaseModel):
        body = payload.model_dump(exclude_none=True)
    else:
        body = payload
    return f"data: {json.dumps(body, ensure_ascii=False, separators=(',', ':'))}\n\n"


def event_stream(
    events: AsyncIterator[str], slot: Slot, on_disconnect: Callable[[], None]
) -> StreamingResponse:
    """A streaming response that releases the request's slot however the stream ends, and
    reports a stream the client left before its end."""

    async def guarded() -> AsyncIterator[str]:
        complete = False
        try:
            async with aclosing(events):  # closing the stream aborts its engine request now
                async for event in events:
                    yield event
            complete = True
        finally:
            slot.release()
            if not complete:
                on_disconnect()

    return StreamingResponse(
        guarded(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(slot.release),  # if the stream never started
    )


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it (and so aborting its engine request) if the client leaves."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise ClientDisconnected()


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
