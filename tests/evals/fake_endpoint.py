"""A fake OpenAI-compatible endpoint with programmed accuracy, latency and failure modes.

It knows the right answer to every suite request (`oracle`: built from the suites' own
`ideal` answers) and answers right with probability `accuracy`, decided by a hash of
(seed, request without its streaming fields, how many times that request was answered), so
an outcome does not depend on the order concurrent calls arrive in, a streamed and a plain
copy of one request agree, and repeats are independent draws. It honours max_tokens, stop,
n and logprobs (unless told to ignore them), counts words as tokens, and can inject 429
storms with Retry-After, 500s, truncated streams, malformed tool-call arguments and hangs.
Runs in a thread with its own event loop so that sync tests and CLI subprocesses can use it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from openk2.evals.suites import get_suite


@dataclass(kw_only=True)
class Profile:
    """How the fake behaves."""

    accuracy: float = 1.0
    seed: int = 0
    latency_s: float = 0.0
    storm: int = 0
    """The first `storm` requests get 429 with Retry-After."""
    retry_after_s: float = 0.05
    error_rate: float = 0.0
    """Share of attempts answered 500."""
    truncate_rate: float = 0.0
    """Share of streamed attempts cut after the first chunk."""
    malformed_rate: float = 0.0
    """Share of tool-call answers whose arguments are not valid JSON."""
    ignore: tuple[str, ...] = ()
    """Parameters not honoured: max_tokens, stop, n, logprobs."""
    hang_after: int | None = None
    """Answer this many requests, then hang every later one."""
    exact_usage: bool = False
    """Count prompt tokens with the bundled vocabulary and the K2.6 template (else words)."""
    step_accuracy: float | None = None
    """For step-by-step answers (lines, then `FINAL:`): each step right with this
    probability, everything after the first wrong step wrong."""


def canonical(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    return json.dumps({"m": messages, "t": tools}, sort_keys=True)


def oracle(suites: list[str], n: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Right answers by request, from the suites' ideal answers."""
    table = {}
    for name in suites:
        suite = get_suite(name)
        for sample in suite.samples(n, seed):
            for i, call in enumerate(sample.calls):
                table[canonical(list(call.messages), list(call.tools))] = suite.ideal(sample, i)
    return table


def _draw(*parts: Any) -> float:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class FakeEndpoint:
    """The server; `requests` counts every request, `answered` each body answered."""

    answers: dict[str, dict[str, Any]]
    profile: Profile = field(default_factory=Profile)
    requests: int = 0
    hanging: int = 0
    answered: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    url: str = ""

    def start(self) -> str:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests += 1
        p = self.profile
        base = canonical(body["messages"], body.get("tools", []))
        wire = json.dumps(body, sort_keys=True)
        self.attempts[wire] += 1
        if p.hang_after is not None and sum(self.answered.values()) >= p.hang_after:
            self.hanging += 1
            await asyncio.Event().wait()
        if self.requests <= p.storm:
            return web.Response(status=429, text="slow down",
                                headers={"Retry-After": str(p.retry_after_s)})
        if _draw(p.seed, "500", wire, self.attempts[wire]) < p.error_rate:
            return web.Response(status=500, text="internal error")
        if p.latency_s:
            await asyncio.sleep(p.latency_s)
        if base not in self.answers:
            return web.Response(status=400, text="fake: unknown request")
        stream = bool(body.get("stream"))
        truncate = stream and _draw(p.seed, "cut", wire, self.attempts[wire]) < p.truncate_rate
        if truncate:
            return await self._truncated(request)
        message = self._message(body, base)
        self.answered[wire] += 1
        choices = self._choices(body, message)
        usage = {"prompt_tokens": _prompt_tokens(body, p.exact_usage), "completion_tokens":
                 _completion_tokens(choices[0]["message"]), "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not stream:
            return web.json_response({"id": "fake", "object": "chat.completion",
                                      "choices": choices, "usage": usage})
        return await _stream(request, body, choices, usage)

    def _message(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        p = self.profile
        plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        key = json.dumps(plain, sort_keys=True)
        seen = self.answered[json.dumps(body, sort_keys=True)]
        ideal = self.answers[base]
        if _draw(p.seed, "ok", key, seen) >= p.accuracy:
            return _wrong(ideal, body)
        if ideal.get("tool_calls") and _draw(p.seed, "bad", key, seen) < p.malformed_rate:
            calls = [{**c, "function": {**c["function"],
                                        "arguments": c["function"]["arguments"][:-1]}}
                     for c in ideal["tool_calls"]]
            return {**ideal, "tool_calls": calls}
        if p.step_accuracy is not None and "FINAL:" in (ideal.get("content") or ""):
            return _degrade(ideal, p.step_accuracy, (p.seed, key, seen))
        return dict(ideal)

    def _choices(self, body: dict[str, Any], message: dict[str, Any]) -> list[dict[str, Any]]:
        ignore = self.profile.ignore
        reason = "tool_calls" if message.get("tool_calls") else "stop"
        text = message.get("content") or ""
        if body.get("stop") and "stop" not in ignore:
            for s in body["stop"] if isinstance(body["stop"], list) else [body["stop"]]:
                text = text.split(s)[0] if s in text else text
        words = text.split()
        limit = body.get("max_tokens")
        if limit is not None and "max_tokens" not in ignore and len(words) > limit:
            text, reason = " ".join(words[:limit]), "length"
        out = {**message, "content": text}
        count = 1 if "n" in ignore else int(body.get("n") or 1)
        choice: dict[str, Any] = {"message": out, "finish_reason": reason, "logprobs": None}
        if body.get("logprobs") and "logprobs" not in ignore:
            top = int(body.get("top_logprobs") or 0)
            choice["logprobs"] = {"content": [
                {"token": w, "logprob": -0.25, "top_logprobs":
                 [{"token": w, "logprob": -0.25}] * top} for w in text.split()]}
        return [{**choice, "index": i} for i in range(count)]

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "par"}}]}
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        assert request.transport is not None
        request.transport.abort()
        return resp


def _wrong(ideal: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A wrong answer of the right shape: no call where one was due, a call where none was,
    a wrong number otherwise."""
    if ideal.get("tool_calls"):
        return {"role": "assistant", "content": "I am not sure."}
    tools = body.get("tools") or []
    if tools:
        name = tools[0]["function"]["name"]
        return {"role": "assistant", "content": "", "tool_calls": [
            {"id": f"functions.{name}:0", "type": "function",
             "function": {"name": name, "arguments": "{}"}}]}
    return {"role": "assistant", "content": "ANSWER: -99999 (wrong)"}


def _degrade(ideal: dict[str, Any], p: float, salt: Any) -> dict[str, Any]:
    *steps, final = ideal["content"].splitlines()
    out, broken = [], False
    for i, step in enumerate(steps):
        broken = broken or _draw(salt, "step", i) >= p
        out.append("zzzzz" if broken else step)
    out.append("FINAL: zzzzz" if broken else final)
    return {**ideal, "content": "\n".join(out)}


def _prompt_tokens(body: dict[str, Any], exact: bool) -> int:
    if exact:
        from openk2.tokenizer import default_tokenizer
        from openk2.tokenizer.chat.template import encode_chat

        return len(encode_chat(default_tokenizer(), body["messages"], body.get("tools")))
    return sum(len(str(m.get("content") or "").split()) + 3 for m in body["messages"])


def _completion_tokens(message: dict[str, Any]) -> int:
    args = "".join(c["function"]["arguments"] for c in message.get("tool_calls") or [])
    return len(str(message.get("content") or "").split()) + len(args) // 4


async def _stream(request: web.Request, body: dict[str, Any], choices: list[dict[str, Any]],
                  usage: dict[str, Any]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for choice in choices:
        for delta in _deltas(choice["message"]):
            chunk = {"index": choice["index"], "delta": delta, "finish_reason": None}
            if choice.get("logprobs") and "content" in delta:
                chunk["logprobs"] = choice["logprobs"] if delta["content"] else None
            await _send(resp, {"choices": [chunk]})
        await _send(resp, {"choices": [{"index": choice["index"], "delta": {},
                                        "finish_reason": choice["finish_reason"]}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        await _send(resp, {"choices": [], "usage": usage})
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def _deltas(message: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "assistant", "content": message.get("content") or ""}]
    for i, call in enumerate(message.get("tool_calls") or []):
        out.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                    "function": {"name": call["function"]["name"],
                                                 "arguments": ""}}]})
        out.append({"tool_calls": [{"index": i, "function":
                                    {"arguments": call["function"]["arguments"]}}]})
    return out


async def _send(resp: web.StreamResponse, chunk: dict[str, Any]) -> None:
    chunk.update({"id": "fake", "object": "chat.completion.chunk"})
    await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
