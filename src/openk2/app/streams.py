"""Run a coroutine that emits wire events and stream them as server-sent events.

The work runs in its own task; the response reads its events from a queue. When the client
goes away (stop button, closed tab) Starlette cancels the response, and the `finally` here
cancels the work too, so a stopped chat never keeps calling the model or the tools.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import StreamingResponse

from openk2.agent.loop.events import Event, Wire
from openk2.app.events import event_json
from openk2.serve.sse import sse

Work = Callable[[Wire], Awaitable[dict[str, Any]]]
"""Runs with a wire to emit on; returns the final event (its `type` is the page's cue)."""


def stream_work(work: Work) -> StreamingResponse:
    """A text/event-stream response of `work`'s events, then its final event."""
    return StreamingResponse(_events(work), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(work: Work) -> AsyncIterator[str]:
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    wire = Wire()
    wire.subscribe(lambda ev: _put(queue, ev))
    task = asyncio.create_task(_run(work, wire, queue))
    try:
        while (item := await queue.get()) is not None:
            yield sse(item)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _put(queue: asyncio.Queue[dict[str, Any] | None], event: Event) -> None:
    shown = event_json(event)
    if shown is not None:
        queue.put_nowait(shown)


async def _run(work: Work, wire: Wire, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    """`work`, its final event (or the error that ended it) and the end-of-stream mark."""
    try:
        queue.put_nowait(await work(wire))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the page shows it; the server keeps serving
        queue.put_nowait({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        queue.put_nowait(None)
