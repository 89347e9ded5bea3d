"""`openk2 route` against fake upstreams on 127.0.0.1: rules, fallback + cooldown, budgets,
streaming passthrough, the route header and the decision log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from route_fakes import Upstream, up_url

from openk2.route.config import load_config, parse_config
from openk2.route.proxy import ROUTE_HEADER, Router


async def _router(start: Callable[..., Any], data: dict[str, Any]) -> tuple[str, Router]:
    router = Router(parse_config(data))
    return await start(router.app), router


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "default", "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_fallback_cools_the_failing_deployment_down(start, tmp_path: Path) -> None:
    bad, good = Upstream("bad", status=500), Upstream("good")
    data = {"deployments": [{"name": "bad", "url": await up_url(start, bad)},
                            {"name": "good", "url": await up_url(start, good)}],
            "groups": {"default": {"deployments": ["bad", "good"], "strategy": "ordered"}},
            "allowed_fails": 1, "cooldown_s": 60, "log": str(tmp_path / "route.jsonl")}
    url, _ = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.post(f"{url}/v1/chat/completions", json=_chat()) as resp:
                assert resp.status == 200
                assert resp.headers[ROUTE_HEADER] == "default/good"
                assert (await resp.json())["choices"][0]["message"]["content"] == "from good"
    assert bad.calls == 1 and good.calls == 5  # one failed attempt, then cooled down
    log = [json.loads(line) for line in (tmp_path / "route.jsonl").read_text().splitlines()]
    assert log[0]["attempts"] == [["bad", "HTTP 500"], ["good", "ok"]]
    assert all(row["attempts"] == [["good", "ok"]] for row in log[1:])


async def test_rules_send_tool_requests_to_a_capable_group(start) -> None:
    small, big = Upstream("small"), Upstream("big")
    data = {"deployments": [
                {"name": "small", "url": await up_url(start, small), "capabilities": ["chat"]},
                {"name": "big", "url": await up_url(start, big), "model": "kimi",
                 "capabilities": ["tools"]}],
            "groups": {"cheap": {"deployments": ["small"]}, "tools": {"deployments": ["big"]}},
            "rules": [{"when": {"needs": ["tools"]}, "group": "tools"}],
            "default_group": "cheap"}
    url, _ = await _router(start, data)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/chat/completions", json=_chat(tools=[tool])) as resp:
            assert resp.headers[ROUTE_HEADER] == "tools/big"
        async with http.post(f"{url}/v1/chat/completions", json=_chat()) as resp:
            assert resp.headers[ROUTE_HEADER] == "cheap/small"
        async with http.get(f"{url}/v1/models") as resp:
            assert {m["id"] for m in (await resp.json())["data"]} == {"cheap", "tools"}
    assert big.bodies[0]["model"] == "kimi"  # the upstream's own model id


async def test_rules_on_request_tags(start) -> None:
    """Tags come from the body (`tags`, not passed upstream) or the x-openk2-tags header."""
    batch, live = Upstream("batch"), Upstream("live")
    data = {"deployments": [{"name": "batch", "url": await up_url(start, batch)},
                            {"name": "live", "url": await up_url(start, live)}],
            "groups": {"batch": {"deployments": ["batch"]}, "live": {"deployments": ["live"]}},
            "rules": [{"when": {"tags": ["batch", "eu"]}, "group": "batch"}],
            "default_group": "live"}
    url, _ = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        for extra, headers, route in (
                ({"tags": ["eu", "batch", "x"]}, {}, "batch/batch"),
                ({"tags": ["batch"]}, {}, "live/live"),  # every tag of the rule is needed
                ({}, {"x-openk2-tags": "batch, eu"}, "batch/batch"),
                ({"tags": ["eu"]}, {"X-OpenK2-Tags": "batch"}, "batch/batch")):
            async with http.post(f"{url}/v1/chat/completions", json={**_chat(), **extra},
                                 headers=headers) as resp:
                assert resp.status == 200 and resp.headers[ROUTE_HEADER] == route, extra
    assert all("tags" not in body for body in batch.bodies + live.bodies)


async def test_budget_trips_exactly(start) -> None:
    up = Upstream("paid")
    # each answer costs (1000 x 1 + 500 x 2) / 1e6 = $0.002; the cap allows exactly 3
    data = {"deployments": [{"name": "paid", "url": await up_url(start, up),
                             "price_in": 1.0, "price_out": 2.0}],
            "groups": {"default": {"deployments": ["paid"], "budget_usd": 0.006}}}
    url, router = await _router(start, data)
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.post(f"{url}/v1/chat/completions", json=_chat()) as resp:
                statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429, 429] and up.calls == 3
    assert router.state.spend_group["default"] == pytest.approx(0.006)


async def test_streams_pass_through_and_are_billed(start) -> None:
    up = Upstream("s")
    data = {"deployments": [{"name": "s", "url": await up_url(start, up), "price_out": 1.0}]}
    url, router = await _router(start, data)
    async with (aiohttp.ClientSession() as http,
                http.post(f"{url}/v1/chat/completions", json=_chat(stream=True)) as resp):
        text = (await resp.read()).decode()
    assert "from s" in text and text.rstrip().endswith("data: [DONE]")
    assert '"usage"' not in text  # the client did not ask for the usage chunk
    assert up.bodies[0]["stream_options"] == {"include_usage": True}
    assert router.state.spend_deployment["s"] == pytest.approx(500 / 1e6)


async def test_all_down_is_503_with_retry_after(start) -> None:
    down = Upstream("down", status=503)
    data = {"deployments": [{"name": "down", "url": await up_url(start, down)}],
            "cooldown_s": 30}
    url, _ = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(f"{url}/v1/chat/completions", json=_chat()) as resp:
                assert resp.status == 503 and resp.headers["Retry-After"] == "30"
        async with http.post(f"{url}/v1/chat/completions", data=b"{nope") as resp:
            assert resp.status == 400
    assert down.calls == 1  # a single deployment cools down too (allowed_fails 1)


def test_misspelt_rule_condition_is_refused() -> None:
    data = {"deployments": [{"name": "a", "url": "http://x"}],
            "groups": {"g": {"deployments": ["a"]}},
            "rules": [{"when": {"need": ["tools"]}, "group": "g"}]}
    with pytest.raises(ValueError, match=r"unknown conditions \['need'\]"):
        parse_config(data)


def test_bad_config_is_explained() -> None:
    with pytest.raises(ValueError, match="unknown or no deployments"):
        parse_config({"deployments": [{"name": "a", "url": "http://x"}],
                      "groups": {"g": {"deployments": ["b"]}}})
    with pytest.raises(ValueError, match="unknown fields"):
        parse_config({"deployments": [{"name": "a", "url": "http://x", "colour": 1}]})
    with pytest.raises(ValueError, match="strategy"):
        parse_config({"deployments": [{"name": "a", "url": "http://x"}],
                      "groups": {"g": {"deployments": ["a"], "strategy": "psychic"}}})


async def test_a_hanging_deployment_gets_allowed_fails_attempts_per_window(start) -> None:
    hung, good = Upstream("hung", hang=True), Upstream("good")
    data = {"deployments": [{"name": "hung", "url": await up_url(start, hung)},
                            {"name": "good", "url": await up_url(start, good)}],
            "groups": {"default": {"deployments": ["hung", "good"], "strategy": "ordered"}},
            "allowed_fails": 2, "cooldown_s": 60, "timeout_s": 0.2}
    url, _ = await _router(start, data)
    async with aiohttp.ClientSession() as http:
        for _ in range(6):
            async with http.post(f"{url}/v1/chat/completions", json=_chat()) as resp:
                assert resp.status == 200 and resp.headers[ROUTE_HEADER] == "default/good"
    assert hung.calls == 2 and good.calls == 6


def test_toml_and_yaml_configs_say_the_same(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "deployments:\n  - {name: a, url: 'http://x/v1', price_in: 1.5}\n"
        "groups:\n  g: {deployments: [a], strategy: cheapest}\nlog: route.jsonl\n")
    (tmp_path / "r.toml").write_text(
        'log = "route.jsonl"\n[[deployments]]\nname = "a"\nurl = "http://x/v1"\n'
        'price_in = 1.5\n[groups.g]\ndeployments = ["a"]\nstrategy = "cheapest"\n')
    assert load_config(tmp_path / "r.yaml") == load_config(tmp_path / "r.toml")
    assert load_config(tmp_path / "r.toml").log_path == tmp_path / "route.jsonl"
    (tmp_path / "bad.toml").write_text("deployments = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_cli_explains_a_config_the_router_cannot_start_with(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from openk2.cli import _register_commands, app

    _register_commands()
    monkeypatch.delenv("NO_SUCH_CALLER_KEY", raising=False)
    cfg = tmp_path / "r.yaml"
    cfg.write_text("deployments: [{name: a, url: 'http://x/v1'}]\n"
                   "keys: [{name: team, env: NO_SUCH_CALLER_KEY}]\n")
    result = CliRunner().invoke(app, ["route", "--config", str(cfg)])
    assert result.exit_code == 2 and "NO_SUCH_CALLER_KEY unset" in result.output
