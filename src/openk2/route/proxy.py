"""The routing proxy: `/v1/chat/completions` (streamed or not) and `/v1/models` over aiohttp.

Each request: features → group (rules) → budget check (429 once the cap is spent) →
candidates in strategy order. A connection error, timeout, 429 or 5xx before the first byte
cools that deployment and moves on to the next (the fallback); a 4xx other than 429 is the
client's problem and goes back as is. After the first streamed byte nothing is retried: a
half-sent stream cannot be replayed. Every answer carries `x-openk2-route: group/deployment`;
spend comes from the upstream's `usage` (streamed: its final usage chunk; the proxy asks for
it), and one JSONL line per request records the decision. Callers' keys are checked when
the config lists any; upstream key values are masked in everything passed on or written.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from openk2.route.callers import Callers
from openk2.route.config import CallerKey, Deployment, Group, RouterConfig
from openk2.route.metrics import RouteMetrics
from openk2.route.redact import Redactor
from openk2.route.selection import Features, RouterState, features

ROUTE_HEADER = "x-openk2-route"
_RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


@dataclass
class Turn:
    """One client request on its way through the proxy."""

    group: Group
    caller: CallerKey | None
    request_class: str | None
    attempts: list[tuple[str, str]] = field(default_factory=list)


class Router:
    """The aiohttp application and its state."""

    def __init__(self, cfg: RouterConfig) -> None:
        self.cfg = cfg
        self.state = RouterState(cfg)
        self.callers = Callers(cfg.keys)
        self.redact = Redactor(cfg)
        self.metrics = RouteMetrics()
        self.timeout_s = cfg.timeout_s
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_get("/metrics", self.metrics_page)
        self.app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=self.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def models(self, request: web.Request) -> web.Response:
        """The group names, which clients may send as `model`."""
        if not self.callers.open and self._caller(request) is None:
            return _error(401, "missing or unknown API key (Authorization: Bearer ...)")
        data = [{"id": name, "object": "model", "owned_by": "openk2-route"}
                for name in self.cfg.groups]
        return web.json_response({"object": "list", "data": data})

    async def metrics_page(self, _request: web.Request) -> web.Response:
        """Prometheus text: requests, attempts, cost, latency, spend (no key values)."""
        text = self.metrics.render(self.state.spend_group, self.callers.spend,
                                   self.state.latency)
        return web.Response(text=text, content_type="text/plain")

    def _caller(self, request: web.Request) -> CallerKey | None:
        return self.callers.identify(request.headers.get("Authorization"))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """Route one chat completion (and count its answer for /metrics)."""
        group, response = await self._chat(request)
        self.metrics.responses[(group, response.status)] += 1
        return response

    async def _chat(self, request: web.Request) -> tuple[str, web.StreamResponse]:
        caller = self._caller(request)
        if not self.callers.open and caller is None:
            return "-", _error(401, "missing or unknown API key (Authorization: Bearer ...)")
        if self.callers.over_budget(caller):
            assert caller is not None
            return "-", _error(429, f"key {caller.name!r} has spent its budget")
        try:
            body = await request.json()
        except ValueError:
            return "-", _error(400, "request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return "-", _error(400, "request needs a `messages` list")
        f = features(body, dict(request.headers))
        group, request_class = self.state.route_for(f)
        turn = Turn(group=group, caller=caller, request_class=request_class)
        return group.name, await self._route(request, body, f, turn)

    async def _route(self, request: web.Request, body: dict[str, Any], f: Features,
                     turn: Turn) -> web.StreamResponse:
        group = turn.group
        if self.state.over_budget(group):
            self._log(turn, None, 429, 0.0, 0.0)
            return _error(429, f"group {group.name!r} has spent its budget", route=group.name)
        score = await self._win_score(group, f)
        for d in self.state.candidates(group, f, turn.request_class, score):
            response = await self._try(request, body, turn, d)
            if response is not None:
                return response
        self._log(turn, None, 503, 0.0, 0.0)
        return _error(503, self.redact.text(
            f"no deployment of group {group.name!r} is available "
            f"(tried: {turn.attempts or 'none usable'})"), route=group.name,
            retry_after=self.cfg.cooldown_s)

    async def _win_score(self, group: Group, f: Features) -> float | None:
        """An embedding router's score, computed in a worker thread so that encoding one
        prompt never stalls the other requests; None for every other strategy."""
        learned = self.state.learned.get(group.name)
        if learned is None or not learned.heavy:
            return None
        return await asyncio.to_thread(learned.win_score, f.body)

    async def _try(self, request: web.Request, body: dict[str, Any], turn: Turn,
                   d: Deployment) -> web.StreamResponse | None:
        """One upstream attempt; None means: fall back to the next deployment."""
        upstream = {k: v for k, v in body.items() if k != "tags"}  # routing only: an
        upstream = {**upstream, "model": d.model}  # OpenAI-style API refuses unknown fields
        if upstream.get("stream"):
            upstream.setdefault("stream_options", {"include_usage": True})
        start = time.perf_counter()
        try:
            headers = d.headers()
        except ValueError as exc:
            return self._failed(d, turn, str(exc))
        try:
            resp = await self._http().post(f"{d.url}/chat/completions", json=upstream,
                                           headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._failed(d, turn, f"connection: {type(exc).__name__}")
        async with resp:
            if resp.status in _RETRY_STATUSES:
                return self._failed(d, turn, f"HTTP {resp.status}")
            if resp.status != 200:
                return await self._client_error(resp, turn, d, start)
            if not body.get("stream"):
                return await self._plain(resp, turn, d, start)
            wanted = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, resp, turn, d, start, wanted)

    def _failed(self, d: Deployment, turn: Turn, why: str) -> None:
        self.state.record_failure(d.name)
        self.metrics.attempt(d.name, "failed")
        turn.attempts.append((d.name, why))
        return None

    async def _client_error(self, resp: aiohttp.ClientResponse, turn: Turn, d: Deployment,
                            start: float) -> web.Response:
        """A 4xx other than 429: the request's own fault, passed on (keys masked)."""
        turn.attempts.append((d.name, f"HTTP {resp.status} (client error, passed on)"))
        self.metrics.attempt(d.name, "client_error")
        self._log(turn, d, resp.status, time.perf_counter() - start, 0.0)
        return web.Response(status=resp.status, body=self.redact.body(await resp.read()),
                            content_type="application/json",
                            headers={ROUTE_HEADER: f"{turn.group.name}/{d.name}"})

    def _succeeded(self, turn: Turn, d: Deployment, latency: float,
                   usage: dict[str, Any] | None) -> float:
        cost = self.state.record_success(d, turn.group, latency, usage)
        self.callers.charge(turn.caller, cost)
        self.metrics.attempt(d.name, "ok", latency, cost)
        return cost

    async def _plain(self, resp: aiohttp.ClientResponse, turn: Turn, d: Deployment,
                     start: float) -> web.Response:
        try:
            data = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError):
            self._failed(d, turn, "invalid JSON")
            return _error(502, f"deployment {d.name!r} sent invalid JSON",
                          route=f"{turn.group.name}/{d.name}")
        latency = time.perf_counter() - start
        cost = self._succeeded(turn, d, latency, data.get("usage"))
        turn.attempts.append((d.name, "ok"))
        self._log(turn, d, 200, latency, cost)
        return web.json_response(data, headers={ROUTE_HEADER: f"{turn.group.name}/{d.name}"})

    async def _stream(self, request: web.Request, resp: aiohttp.ClientResponse, turn: Turn,
                      d: Deployment, start: float, wanted: bool) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                          ROUTE_HEADER: f"{turn.group.name}/{d.name}"})
        await out.prepare(request)
        usage: dict[str, Any] | None = None
        outcome = "ok"
        try:
            async for line in resp.content:
                found = _usage_of(line)
                usage = found or usage
                if found is None or wanted or not _usage_only(line):
                    await out.write(line)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = f"stream broke after the first byte: {type(exc).__name__}"
            self.state.record_failure(d.name)
            self.metrics.attempt(d.name, "failed")
        latency = time.perf_counter() - start
        cost = self._succeeded(turn, d, latency, usage) if outcome == "ok" else 0.0
        turn.attempts.append((d.name, outcome))
        self._log(turn, d, 200, latency, cost)
        await out.write_eof()
        return out

    def _log(self, turn: Turn, d: Deployment | None, status: int, latency_s: float,
             cost: float) -> None:
        path: Path | None = self.cfg.log_path
        if path is None:
            return
        group = turn.group.name
        row = {"t": time.time(), "group": group, "class": turn.request_class,
               "caller": turn.caller.name if turn.caller else None,
               "deployment": d.name if d else None, "attempts": turn.attempts,
               "status": status, "latency_s": latency_s, "cost_usd": cost,
               "group_spend_usd": self.state.spend_group[group]}
        with path.open("a") as fh:
            fh.write(self.redact.text(json.dumps(row)) + "\n")


def _usage_only(line: bytes) -> bool:
    """A usage chunk with no choices: the proxy asked for it; a client that did not may
    choke on it (`chunk.choices[0]`), so it is not passed on."""
    try:
        chunk = json.loads(line.decode("utf-8", errors="replace").strip()[5:])
    except ValueError:
        return False
    return isinstance(chunk, dict) and not chunk.get("choices")


def _usage_of(line: bytes) -> dict[str, Any] | None:
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith("data:") or text == "data: [DONE]":
        return None
    try:
        chunk = json.loads(text[5:])
    except ValueError:
        return None
    return chunk.get("usage") if isinstance(chunk, dict) else None


def _error(status: int, message: str, *, route: str | None = None,
           retry_after: float | None = None) -> web.Response:
    headers = {ROUTE_HEADER: route} if route else {}
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return web.json_response({"error": {"message": message, "type": "openk2_route"}},
                             status=status, headers=headers)


def serve(router: Router, host: str = "127.0.0.1", port: int = 8100) -> None:
    """Run the proxy until interrupted (build the `Router` first: its errors, such as an
    unreadable eval report or an unset key variable, come before anything listens)."""
    web.run_app(router.app, host=host, port=port, access_log=None)
