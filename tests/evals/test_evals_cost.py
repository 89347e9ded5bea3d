"""`openk2 cost` against a hand computation (the spec's worked numbers, section 3.4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.evals.cost import ApiPrice, Mix, Node, api_price, cost_report, load_prices


def test_kimi_k26_crossover_by_hand() -> None:
    mix = Mix(input_tokens=8000, output_tokens=1000, cache_hit=0.5)
    node = Node(gpus=8, gpu_hour=3.0, output_tok_s=2500, utilization=0.4)
    report = cost_report([api_price("kimi-k2.6")], node, mix)
    row = report["apis"][0]
    per_request = (8000 * 0.5 * 0.95 + 8000 * 0.5 * 0.16 + 1000 * 4.00) / 1e6  # 0.00844
    monthly_node = 8 * 3.0 * 730  # 17,520
    assert row["usd_per_request"] == pytest.approx(per_request)
    assert row["break_even_requests_month"] == pytest.approx(monthly_node / per_request)
    assert round(row["break_even_requests_month"] / 1e6, 2) == 2.08
    assert round(row["break_even_tokens_month"] / 1e9, 1) == 18.7
    assert round(row["break_even_avg_req_s"], 2) == 0.79
    assert round(row["required_output_tok_s"]) == 1975  # 790 tok/s / u = 0.4
    cap = 2500 / 1000 * 0.4 * 730 * 3600
    assert report["node"]["capacity_requests_month"] == pytest.approx(cap)
    assert row["feasible_on_one_node"] and row["crossover_requests_month"] == pytest.approx(
        monthly_node / per_request)
    assert row["api_monthly_usd"] == pytest.approx(per_request * cap)
    assert report["node"]["usd_per_1m_output"] == pytest.approx(24 / (0.4 * 2500 * 3600) * 1e6)


def test_staircase_needs_a_second_node_or_never() -> None:
    mix = Mix(input_tokens=0, output_tokens=1000, cache_hit=0)
    api = ApiPrice(name="x", input=0, output=10.0)  # $0.01 per request
    per_node = 730 * 10.0  # $7,300 a month
    slow = Node(gpus=1, gpu_hour=10.0, output_tok_s=1000, utilization=1.0)  # 2.628M req/month
    row = cost_report([api], slow, mix)["apis"][0]
    assert row["crossover_requests_month"] == pytest.approx(per_node / 0.01)
    with_ops = Node(gpus=1, gpu_hour=10.0, ops_month=20_000, output_tok_s=1000)
    # one node carries 2.628M (API $26,280 < $27,300): the crossover is on the second step
    assert cost_report([api], with_ops, mix)["apis"][0]["crossover_requests_month"] == \
        pytest.approx((2 * per_node + 20_000) / 0.01)
    tiny = Node(gpus=1, gpu_hour=10.0, output_tok_s=1.0)
    assert cost_report([api], tiny, mix)["apis"][0]["crossover_requests_month"] is None


def test_price_file_rows_are_sourced_and_dated() -> None:
    prices = load_prices()
    assert prices["recorded"]
    for name, row in prices["apis"].items():
        assert row["source"] and row["as_of"] and row["tag"] in ("reported", "uncertain"), name
    with pytest.raises(ValueError, match="incomplete"):
        api_price("gpt-5.5")
    with pytest.raises(ValueError, match="known"):
        api_price("no-such-model")


def test_cost_cli_json_and_plot(tmp_path: Path) -> None:
    _register_commands()
    plot = tmp_path / "cost.png"
    result = CliRunner().invoke(app, [
        "cost", "--gpus", "8xH200", "--gpu-hour", "3.0", "--throughput", "1975",
        "--utilization", "0.4", "--api", "kimi-k2.6", "--api", "claude-opus-4.6",
        "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["api"] for r in report["apis"]] == ["kimi-k2.6", "claude-opus-4.6"]
    assert round(report["apis"][1]["break_even_tokens_month"] / 1e9, 1) == 3.4
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(app, ["cost", "--gpus", "eight", "--plot", str(plot)])
    assert bad.exit_code == 2 and "8xH200" in bad.output


def test_utilization_bands_by_hand() -> None:
    """At u = 20% one node (2,500 tok/s) carries 1.314M requests a month, short of the 2.08M
    break-even against K2.6's API; from 40% it is past it. u* = 2.08M / 6.57M = 31.6%."""
    mix = Mix(input_tokens=8000, output_tokens=1000, cache_hit=0.5)
    node = Node(gpus=8, gpu_hour=3.0, output_tok_s=2500, utilization=0.4)
    report = cost_report([api_price("kimi-k2.6")], node, mix, bands=(0.2, 0.4, 0.6, 0.8))
    per_request = (8000 * 0.5 * 0.95 + 8000 * 0.5 * 0.16 + 1000 * 4.00) / 1e6
    q_star = 17_520 / per_request
    full_capacity = 2500 / 1000 * 730 * 3600  # requests a month at u = 1
    assert report["apis"][0]["break_even_utilization"] == pytest.approx(q_star / full_capacity)
    assert round(report["apis"][0]["break_even_utilization"], 3) == 0.316
    bands = report["utilization_bands"]
    assert [b["utilization"] for b in bands] == [0.2, 0.4, 0.6, 0.8]
    for band in bands:
        u, row = band["utilization"], band["apis"]["kimi-k2.6"]
        assert band["capacity_requests_month"] == pytest.approx(full_capacity * u)
        assert row["required_output_tok_s"] == pytest.approx(
            q_star / (730 * 3600 * u) * 1000)
        assert band["usd_per_1m_output"] == pytest.approx(24 / (u * 2500 * 3600) * 1e6)
        assert row["feasible_on_one_node"] is (u > 0.316)
        assert (row["crossover_requests_month"] is None) is (u < 0.316)
    assert round(bands[0]["apis"]["kimi-k2.6"]["required_output_tok_s"]) == 3949  # 789.9 / 0.2


def test_required_throughput_counts_ops_costs() -> None:
    """With $F a month of ops on top, the node must carry (730c + F)/A requests, not 730c/A."""
    mix = Mix(input_tokens=0, output_tokens=1000, cache_hit=0)
    api = ApiPrice(name="x", input=0, output=10.0)  # $0.01 per request
    node = Node(gpus=1, gpu_hour=10.0, ops_month=7_300, utilization=0.5)
    row = cost_report([api], node, mix)["apis"][0]
    assert row["break_even_requests_month"] == pytest.approx(14_600 / 0.01)
    assert row["required_output_tok_s"] == pytest.approx(1.46e6 / (730 * 3600 * 0.5) * 1000)


def test_cost_cli_bands(tmp_path: Path) -> None:
    _register_commands()
    args = ["cost", "--gpus", "8xH200", "--gpu-hour", "3.0", "--throughput", "2500",
            "--api", "kimi-k2.6", "--plot", str(tmp_path / "c.png")]
    result = CliRunner().invoke(app, [*args, "--bands", "0.25,0.5", "--json"])
    assert result.exit_code == 0, result.output
    bands = json.loads(result.output)["utilization_bands"]
    assert [b["utilization"] for b in bands] == [0.25, 0.5]
    text = CliRunner().invoke(app, args).output
    assert "break-even utilisation 32%" in text and "at u=20%" in text and "out of reach" in text
    bad = CliRunner().invoke(app, [*args, "--bands", "0.5,1.5"])
    assert bad.exit_code == 2 and "--bands" in bad.output
