"""Operating the router: an outage of the primary and its recovery (no client ever sees a
failure), the EWMA latency strategy, caller keys and budgets, upstream keys that never leak,
and /metrics with cost and latency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from route_fakes import Upstream, up_url

from openk2.route.config import parse_config
from openk2.route.proxy import ROUTE_HEADER, Router
from openk2.route.selection import LATENCY_TTL_S, RouterState

CHAT = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}


async def _router(start: Callable[..., Any], data: dict[str, Any]) -> tuple[str, Router]:
    router = Router(parse_config(data))
    return await start(router.app), router


async def _burst(http: aiohttp.ClientSession, url: str, n: int,
                 **kw: Any) -> list[tuple[int, str]]:
    """`n` concurrent requests: (status, route header) of each."""
    async def one() -> tuple[int, str]:
        async with http.post(f"{url}/v1/chat/completions", json=CHAT, **kw) as resp:
            await resp.read()
            return resp.status, resp.headers.get(ROUTE_HEADER, "")
    return await asyncio.gather(*(one() for _ in range(n)))


async def test_primary_outage_and_recovery_without_a_failed_request(start) -> None:
    primary, backup = Upstream("primary"), Upstream("backup")
    app = web.Application()
    app.router.add_post("/v1/chat/completions", primary.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port = server.port
    data = {"deployments": [{"name": "primary", "url": f"http://127.0.0.1:{port}/v1"},
                            {"name": "backup", "url": await up_url(start, backup)}],
            "groups": {"default": {"deployments": ["primary", "backup"],
                                   "strategy": "ordered"}},
            "allowed_fails": 1, "cooldown_s": 0.3}
    url, _ = await _router(start, data)
    results = []
    async with aiohttp.ClientSession() as http:
        before = await _burst(http, url, 10)
        await server.close()  # the primary goes down: connections are refused
        for _ in range(8):  # 0.8 s of outage: the cooldown expires twice and is re-armed
            results += await _burst(http, url, 10)
            await asyncio.sleep(0.1)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()  # it recovers
        await asyncio.sleep(0.35)  # past the cooldown
        after = await _burst(http, url, 10)
    await server.close()
    assert all(status == 200 for status, _ in before + results + after)  # zero failures
    assert {r for _, r in before} == {"default/primary"}
    assert {r for _, r in results} == {"default/backup"}
    assert {r for _, r in after} == {"default/primary"}  # traffic went back


async def test_a_stream_cut_after_the_first_byte_is_never_resent(start) -> None:
    cut, backup = Upstream("cut", cut=True), Upstream("backup")
    data = {"deployments": [{"name": "cut", "url": await up_url(start, cut)},
                            {"name": "backup", "url": await up_url(start, backup)}],
            "groups": {"default": {"deployments": ["cut", "backup"], "strategy": "ordered"}}}
    url, router = await _router(start, data)
    async with (aiohttp.ClientSession() as http,
                http.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": True}) as r):
        text = (await r.read()).decode()
    assert text.count("from cut") == 1 and "from backup" not in text  # no second answer
    assert backup.calls == 0 and "[DONE]" not in text
    assert router.state.cooling("cut")  # yet the failure counts against the deployment


async def test_least_latency_follows_the_moving_average(start) -> None:
    a, b = Upstream("a", delay_s=0.0), Upstream("b", delay_s=0.08)
    data = {"deployments": [{"name": "a", "url": await up_url(start, a)},
                            {"name": "b", "url": await up_url(start, b)}],
            "groups": {"default": {"deployments": ["a", "b"], "strategy": "least-latency"}}}
    url, router = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        for _ in range(4):  # both measured (an unmeasured deployment is tried first)
            await _burst(http, url, 1)
        assert router.state.latency["a"] < router.state.latency["b"]
        a.delay_s = 0.15  # a slows down: its average rises past b's within a few answers
        routes = [r for _ in range(10) for _, r in await _burst(http, url, 1)]
    assert routes[-1] == "default/b" and routes.count("default/a") >= 1


def test_a_stale_latency_average_is_measured_again() -> None:
    now = [0.0]
    cfg = parse_config({"deployments": [{"name": "a", "url": "http://a/v1"},
                                        {"name": "b", "url": "http://b/v1"}],
                        "groups": {"g": {"deployments": ["a", "b"],
                                         "strategy": "least-latency"}}})
    state = RouterState(cfg, clock=lambda: now[0])
    group, a, b = cfg.groups["g"], cfg.deployments["a"], cfg.deployments["b"]
    state.record_success(a, group, 0.01, None)
    state.record_success(b, group, 0.50, None)  # b was slow once
    assert [d.name for d in state._order("least-latency", [a, b])] == ["a", "b"]
    now[0] = LATENCY_TTL_S + 1
    state.record_success(a, group, 0.01, None)  # only a kept getting traffic
    assert [d.name for d in state._order("least-latency", [a, b])] == ["b", "a"]


async def test_caller_keys_and_per_key_budgets(start, monkeypatch) -> None:
    monkeypatch.setenv("TEAM_A", "sk-team-a-123")
    monkeypatch.setenv("TEAM_B", "sk-team-b-456")
    monkeypatch.setenv("UP_KEY", "sk-upstream-789")
    up = Upstream("paid")
    data = {"deployments": [{"name": "paid", "url": await up_url(start, up), "key": "UP_KEY",
                             "price_in": 1.0, "price_out": 2.0}],  # $0.002 per answer
            "keys": [{"name": "team-a", "env": "TEAM_A", "budget_usd": 0.004},
                     {"name": "team-b", "env": "TEAM_B"}]}
    url, router = await _router(start, data)
    a = {"Authorization": "Bearer sk-team-a-123"}
    async with aiohttp.ClientSession() as http:
        assert [s for s, _ in await _burst(http, url, 1)] == [401]
        wrong = {"Authorization": "Bearer sk-team-a-12"}
        assert [s for s, _ in await _burst(http, url, 1, headers=wrong)] == [401]
        async with http.get(f"{url}/v1/models") as resp:
            assert resp.status == 401
        statuses = [(await _burst(http, url, 1, headers=a))[0][0] for _ in range(3)]
        b = {"Authorization": "Bearer sk-team-b-456"}
        assert [s for s, _ in await _burst(http, url, 2, headers=b)] == [200, 200]
    assert statuses == [200, 200, 429]  # team-a's cap, not team-b's
    assert router.callers.spend == pytest.approx({"team-a": 0.004, "team-b": 0.004})
    assert set(up.auth) == {"Bearer sk-upstream-789"}  # callers' keys never go upstream


async def test_upstream_keys_never_reach_clients_or_logs(start, monkeypatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("UP_KEY", "sk-live-secret-0042")
    echo = Upstream("echo", status=400)
    log = tmp_path / "route.jsonl"
    data = {"deployments": [{"name": "echo", "url": await up_url(start, echo), "key": "UP_KEY"},
                            {"name": "gone", "url": "http://127.0.0.1:9/v1", "key": "UNSET_K"}],
            "groups": {"echo": {"deployments": ["echo"]}, "gone": {"deployments": ["gone"]}},
            "log": str(log)}
    url, _ = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "echo"}) as r:
            echoed = await r.text()
            assert r.status == 400 and "[redacted]" in echoed
        async with http.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "gone"}) as r:
            unset = await r.text()
            assert r.status == 503 and "UNSET_K unset" in unset
        async with http.get(f"{url}/metrics") as r:
            page = await r.text()
    assert echo.auth == ["Bearer sk-live-secret-0042"]  # it did get the key...
    for text in (echoed, unset, page, log.read_text()):
        assert "sk-live-secret-0042" not in text  # ...and nobody else saw it


async def test_metrics_account_cost_and_latency(start) -> None:
    good, bad = Upstream("good", delay_s=0.02), Upstream("bad", status=502)
    data = {"deployments": [{"name": "bad", "url": await up_url(start, bad)},
                            {"name": "good", "url": await up_url(start, good),
                             "price_in": 1.0, "price_out": 2.0}],
            "groups": {"default": {"deployments": ["bad", "good"], "strategy": "ordered"}},
            "cooldown_s": 60}
    url, _ = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        await _burst(http, url, 1)
        async with http.post(f"{url}/v1/chat/completions", data=b"{nope") as r:
            assert r.status == 400
        await _burst(http, url, 2)
        async with http.get(f"{url}/metrics") as r:
            page = await r.text()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in page.splitlines() if not line.startswith("#")}
    assert values['openk2_route_responses_total{group="default",status="200"}'] == 3
    assert values['openk2_route_responses_total{group="-",status="400"}'] == 1
    assert values['openk2_route_upstream_attempts_total{deployment="bad",outcome="failed"}'] == 1
    assert values['openk2_route_upstream_attempts_total{deployment="good",outcome="ok"}'] == 3
    assert values['openk2_route_cost_usd_total{deployment="good"}'] == pytest.approx(0.006)
    assert values['openk2_route_group_spend_usd{group="default"}'] == pytest.approx(0.006)
    count = 'openk2_route_upstream_latency_seconds_count{deployment="good"}'
    assert values[count] == 3
    assert values['openk2_route_upstream_latency_seconds_sum{deployment="good"}'] >= 0.06
    assert values['openk2_route_latency_ewma_seconds{deployment="good"}'] >= 0.02
    assert json.dumps(values)  # every sample line parsed as `name value`
