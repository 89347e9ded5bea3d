"""Runs an `LLMEngine` on a background thread and streams its outputs to asyncio tasks.

The event loop never runs model code: requests and aborts go to the engine thread through a
command queue, and each step's deltas come back through `call_soon_threadsafe` into one
`asyncio.Queue` per request. Leaving a `generate()` iterator early (client disconnect, task
cancelled) aborts the request, which frees its pages before the next step.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from openk2.engine.llm_engine import LLMEngine
from openk2.engine.outputs import EngineStats, RequestOutput
from openk2.engine.sampling_params import SamplingParams
from openk2.model.vision.processor import MediaItem

log = logging.getLogger(__name__)


class EngineDeadError(RuntimeError):
    """The engine thread is not running (never started, stopped, or crashed)."""


class GenerationError(RuntimeError):
    """One sequence of this request failed inside the engine (finish_reason "error"); the
    request's other sequences are aborted and every other request keeps running."""


@dataclass(slots=True)
class _Stream:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[RequestOutput | BaseException]


class AsyncLLMEngine:
    """Thread-backed async front of an `LLMEngine`; one instance per server."""

    def __init__(self, engine: LLMEngine, idle_wait_s: float = 0.05) -> None:
        self.engine = engine
        self._idle_wait_s = idle_wait_s
        self._commands: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stats = engine.snapshot()
        self.num_step_errors = 0

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self.is_running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="openk2-engine", daemon=True)
        self._thread.start()

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop the loop; pending requests fail with EngineDeadError."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None
        self._fail_streams(EngineDeadError("the engine was shut down"))

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def stats(self) -> EngineStats:
        """The snapshot taken after the latest step (cheap; no lock on the engine)."""
        return self._stats

    # ---- requests ---------------------------------------------------------------------------

    async def generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        media: Sequence[MediaItem] = (),
        media_keys: Sequence[bytes] | None = None,
    ) -> AsyncIterator[RequestOutput]:
        """Yield deltas of every choice of one request until all of them finished (`media`:
        the prompt's images / video chunks, as `LLMEngine.add_request` takes them)."""
        if not self.is_running:
            raise EngineDeadError("the engine is not running")
        stream = _Stream(asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            if request_id in self._streams:
                raise ValueError(f"request id {request_id!r} is already in use")
            self._streams[request_id] = stream
        self._send("add", (request_id, prompt_token_ids, params, tuple(media), media_keys))
        remaining = params.n
        try:
            while remaining:
                item = await stream.queue.get()
                if isinstance(item, BaseException):
                    raise item
                if item.error is not None:
                    raise GenerationError(item.error)
                remaining -= item.finished
                yield item
        finally:
            with self._lock:
                self._streams.pop(request_id, None)
            if remaining:
                self.abort(request_id)

    def abort(self, request_id: str) -> None:
        """Ask the engine thread to drop a request and free its pages (before its next step)."""
        self._send("abort", request_id)

    def _send(self, kind: str, payload: object) -> None:
        self._commands.put((kind, payload))
        self._wake.set()

    # ---- engine thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain_commands()
            if not self.engine.has_unfinished_requests():
                self._stats = self.engine.snapshot()
                self._wake.wait(self._idle_wait_s)
                self._wake.clear()
                continue
            try:
                outputs = self.engine.step()
            except Exception as exc:  # per-sequence faults are isolated inside `step()`; this
                # is a scheduler or cache bug, after which no running request can be trusted
                log.exception("engine step failed; aborting all running requests")
                self.num_step_errors += 1
                self._fail_all(exc)
                continue
            self._stats = self.engine.snapshot()
            self._dispatch(outputs)

    def _drain_commands(self) -> None:
        while True:
            try:
                kind, payload = self._commands.get_nowait()
            except queue.Empty:
                return
            if kind == "abort":
                self.engine.abort_request(str(payload))
            else:
                self._add(payload)

    def _add(self, payload: object) -> None:
        request_id, prompt, params, media, keys = payload  # type: ignore[misc]
        try:
            self.engine.add_request(prompt, params, request_id, media, keys)
        except Exception as exc:
            self._deliver(request_id, exc)

    def _dispatch(self, outputs: list[RequestOutput]) -> None:
        for out in outputs:
            self._deliver(out.request_id, out)

    def _deliver(self, request_id: str, item: RequestOutput | BaseException) -> None:
        with self._lock:
            stream = self._streams.get(request_id)
        if stream is None:  # the client left; make sure nothing keeps running for it
            if isinstance(item, RequestOutput) and not item.finished:
                self.engine.abort_request(request_id)
            return
        try:
            stream.loop.call_soon_threadsafe(stream.queue.put_nowait, item)
        except RuntimeError:  # the client's event loop is closed
            self.engine.abort_request(request_id)

    def _fail_all(self, exc: BaseException) -> None:
        for request_id in self.engine.abort_all():
            self._deliver(request_id, exc)
        self._stats = self.engine.snapshot()

    def _fail_streams(self, exc: BaseException) -> None:
        with self._lock:
            streams = list(self._streams.items())
        for _, stream in streams:
            try:
                stream.loop.call_soon_threadsafe(stream.queue.put_nowait, exc)
            except RuntimeError:
                continue
