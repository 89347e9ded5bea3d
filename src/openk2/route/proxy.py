"""The routing proxy: `/v1/chat/completions` (streamed or not) and `/v1/models` over aiohttp.

Each request: features → group (rules) → budget check (429 once the cap is spent) →
candidates in strategy order. A connection error, timeout, 429 or 5xx before the first byte
cools that deployment and moves on to the next (the fallback); a 4xx other than 429 is the
client's problem and goes back as is. After the first streamed byte nothing is retried: a
half-sent stream cannot be replayed. Every answer carries `x-openk2-route: group/deployment`;
spend comes from the upstream's `usage` (streamed: its final usage chunk; the proxy asks for
it), and one JSONL line per request records the decision.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from openk2.route.config import Deployment, Group, RouterConfig
from openk2.route.selection import RouterState, features

ROUTE_HEADER = "x-openk2-route"
_RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


class Router:
    """The aiohttp application and its state."""

    def __init__(self, cfg: RouterConfig) -> None:
        self.cfg = cfg
        self.state = RouterState(cfg)
        self.timeout_s = cfg.timeout_s
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)
        self.app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=self.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def models(self, _request: web.Request) -> web.Response:
        """The group names, which clients may send as `model`."""
        data = [{"id": name, "object": "model", "owned_by": "openk2-route"}
                for name in self.cfg.groups]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """Route one chat completion."""
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "request needs a `messages` list")
        f = features(body, dict(request.headers))
        group = self.state.group_for(f)
        if self.state.over_budget(group):
            self._log(group, None, [], 429, 0.0, 0.0)
            return _error(429, f"group {group.name!r} has spent its budget", route=group.name)
        attempts: list[tuple[str, str]] = []
        for d in self.state.candidates(group, f):
            response = await self._try(request, body, group, d, attempts)
            if response is not None:
                return response
        self._log(group, None, attempts, 503, 0.0, 0.0)
        return _error(503, f"no deployment of group {group.name!r} is available "
                      f"(tried: {attempts or 'none usable'})", route=group.name,
                      retry_after=self.cfg.cooldown_s)

    async def _try(self, request: web.Request, body: dict[str, Any], group: Group,
                   d: Deployment, attempts: list[tuple[str, str]]) -> web.StreamResponse | None:
        """One upstream attempt; None means: fall back to the next deployment."""
        upstream = {**body, "model": d.model}
        if upstream.get("stream"):
            upstream.setdefault("stream_options", {"include_usage": True})
        start = time.perf_counter()
        try:
            headers = d.headers()
        except ValueError as exc:
            return self._failed(d, attempts, str(exc))
        try:
            resp = await self._http().post(f"{d.url}/chat/completions", json=upstream,
                                           headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._failed(d, attempts, f"connection: {type(exc).__name__}")
        async with resp:
            if resp.status in _RETRY_STATUSES:
                return self._failed(d, attempts, f"HTTP {resp.status}")
            route = f"{group.name}/{d.name}"
            if resp.status != 200:
                attempts.append((d.name, f"HTTP {resp.status} (client error, passed on)"))
                self._log(group, d, attempts, resp.status, time.perf_counter() - start, 0.0)
                return web.Response(status=resp.status, body=await resp.read(),
                                    content_type="application/json",
                                    headers={ROUTE_HEADER: route})
            if not body.get("stream"):
                return await self._plain(resp, group, d, attempts, start)
            wanted = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, resp, group, d, attempts, start, wanted)

    def _failed(self, d: Deployment, attempts: list[tuple[str, str]], why: str) -> None:
        self.state.record_failure(d.name)
        attempts.append((d.name, why))
        return None

    async def _plain(self, resp: aiohttp.ClientResponse, group: Group, d: Deployment,
                     attempts: list[tuple[str, str]], start: float) -> web.Response:
        try:
            data = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError):
            self.state.record_failure(d.name)
            attempts.append((d.name, "invalid JSON"))
            return _error(502, f"deployment {d.name!r} sent invalid JSON",
                          route=f"{group.name}/{d.name}")
        latency = time.perf_counter() - start
        cost = self.state.record_success(d, group, latency, data.get("usage"))
        attempts.append((d.name, "ok"))
        self._log(group, d, attempts, 200, latency, cost)
        return web.json_response(data, headers={ROUTE_HEADER: f"{group.name}/{d.name}"})

    async def _stream(self, request: web.Request, resp: aiohttp.ClientResponse, group: Group,
                      d: Deployment, attempts: list[tuple[str, str]], start: float,
                      wanted: bool) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                          ROUTE_HEADER: f"{group.name}/{d.name}"})
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
        latency = time.perf_counter() - start
        cost = self.state.record_success(d, group, latency, usage) if outcome == "ok" else 0.0
        attempts.append((d.name, outcome))
        self._log(group, d, attempts, 200, latency, cost)
        await out.write_eof()
        return out

    def _log(self, group: Group, d: Deployment | None, attempts: list[tuple[str, str]],
             status: int, latency_s: float, cost: float) -> None:
        path: Path | None = self.cfg.log_path
        if path is None:
            return
        row = {"t": time.time(), "group": group.name, "deployment": d.name if d else None,
               "attempts": attempts, "status": status, "latency_s": latency_s,
               "cost_usd": cost, "group_spend_usd": self.state.spend_group[group.name]}
        with path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


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


def serve(cfg: RouterConfig, host: str = "127.0.0.1", port: int = 8100) -> None:
    """Run the proxy until interrupted."""
    web.run_app(Router(cfg).app, host=host, port=port, access_log=None)
