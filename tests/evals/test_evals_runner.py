"""The runner against fake endpoints with programmed accuracy, price and failure modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openk2.evals.client import RetryConfig
from openk2.evals.endpoints import parse_endpoint
from openk2.evals.runner import RunConfig, run

FAST = RetryConfig(base_delay_s=0.01, attempts=4)


def _run(tmp_path: Path, endpoints: list[str], suites: list[str], n: int,
         **kw: Any) -> dict[str, Any]:
    cfg = RunConfig(endpoints=[parse_endpoint(e) for e in endpoints], suites=suites, n=n,
                    out_dir=tmp_path, retry=FAST, html=False, **kw)
    return run(cfg)


def test_recovers_programmed_accuracy_through_failures(tmp_path: Path, fake_endpoint) -> None:
    suites = ["math", "functions"]
    flaky = fake_endpoint(suites, 60, accuracy=0.8, storm=6, retry_after_s=0.05,
                          error_rate=0.15, latency_s=0.002)
    clean = fake_endpoint(suites, 60, accuracy=0.4)
    report = _run(tmp_path, [f"flaky={flaky.url},concurrency=6", f"clean={clean.url}"],
                  suites, 60)
    for name, p in (("flaky", 0.8), ("clean", 0.4)):
        for suite in suites:
            row = report["endpoints"][name]["suites"][suite]
            assert row["errors"] == 0
            assert row["ci95"][0] <= p <= row["ci95"][1], (name, suite, row)
    assert flaky.requests > report["endpoints"]["flaky"]["calls_sent"]  # 429s and 500s retried


def test_truncated_streams_are_retried_not_scored(tmp_path: Path, fake_endpoint) -> None:
    fake = fake_endpoint(["tool-calls"], 24, truncate_rate=0.3)
    report = _run(tmp_path, [f"f={fake.url}"], ["tool-calls"], 24)
    row = report["endpoints"]["f"]["suites"]["tool-calls"]
    assert row["errors"] == 0 and row["pass_at_1"] == 1.0
    assert row["extra"]["stream_agreement"] == 1.0


def test_tool_calls_metrics_follow_the_programmed_faults(tmp_path: Path, fake_endpoint) -> None:
    good = fake_endpoint(["tool-calls"], 48)
    broken = fake_endpoint(["tool-calls"], 48, malformed_rate=0.5)
    report = _run(tmp_path, [f"good={good.url}", f"broken={broken.url}"], ["tool-calls"], 48)
    g = report["endpoints"]["good"]["suites"]["tool-calls"]["extra"]
    b = report["endpoints"]["broken"]["suites"]["tool-calls"]["extra"]
    assert g["tool_call_f1"] == 1.0 and g["schema_accuracy"] == 1.0
    assert g["finish_reasons"]["tool_calls"] > 0 and g["finish_reasons"]["stop"] > 0
    assert b["tool_call_f1"] == 1.0  # it still calls when it should
    assert 0.25 < b["schema_accuracy"] < 0.75  # ~half of its calls have broken arguments


def test_preflight_catches_ignored_parameters(tmp_path: Path, fake_endpoint) -> None:
    honest = fake_endpoint(["preflight"], 1)
    sloppy = fake_endpoint(["preflight"], 1, ignore=("stop", "n", "logprobs", "max_tokens"))
    report = _run(tmp_path, [f"honest={honest.url}", f"sloppy={sloppy.url}"], ["preflight"], 1)
    checks = {n: report["endpoints"][n]["suites"]["preflight"]["extra"]["checks"]
              for n in ("honest", "sloppy")}
    assert all(checks["honest"].values()), checks["honest"]
    failed = {c for c, ok in checks["sloppy"].items() if not ok}
    assert failed == {"stop", "n", "logprobs", "max_tokens"}


def test_pass_hat_k_with_repeats(tmp_path: Path, fake_endpoint) -> None:
    fake = fake_endpoint(["math"], 60, accuracy=0.7)
    row = _run(tmp_path, [f"f={fake.url}"], ["math"], 60, repeats=4)["endpoints"]["f"][
        "suites"]["math"]
    assert row["samples"] == 240 and row["k"] == 4
    assert row["ci95"][0] <= 0.7 <= row["ci95"][1]
    assert row["pass_hat_k"] == pytest.approx(0.7**4, abs=0.1)


def test_rerun_is_served_from_the_cache(tmp_path: Path, fake_endpoint) -> None:
    fake = fake_endpoint(["math", "tool-calls"], 10, accuracy=0.6)
    first = _run(tmp_path, [f"f={fake.url}"], ["math", "tool-calls"], 10)
    sent = fake.requests
    second = _run(tmp_path, [f"f={fake.url}"], ["math", "tool-calls"], 10)
    assert fake.requests == sent and second["endpoints"]["f"]["calls_sent"] == 0
    for suite in ("math", "tool-calls"):
        a, b = (r["endpoints"]["f"]["suites"][suite] for r in (first, second))
        assert a["pass_at_1"] == b["pass_at_1"] and a["latency_p50_s"] == b["latency_p50_s"]


def test_cost_per_success_matches_the_usage(tmp_path: Path, fake_endpoint) -> None:
    fake = fake_endpoint(["math"], 20, accuracy=0.5)
    report = _run(tmp_path, [f"f={fake.url},price_in=2,price_out=10"], ["math"], 20)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    dollars = sum(r["prompt_tokens"] * 2 + r["completion_tokens"] * 10 for r in rows) / 1e6
    wins = sum(r["passed"] for r in rows)
    row = report["endpoints"]["f"]["suites"]["math"]
    assert row["cost_usd"] == pytest.approx(dollars)
    assert row["cost_per_success"] == pytest.approx(dollars / wins)
    assert row["tokens"]["prompt"] == sum(r["prompt_tokens"] for r in rows) > 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["endpoints"]["f"]["suites"]["math"]["n"] == 20


def test_preflight_checks_prompt_tokens_exactly_when_the_tokenizer_is_known(
        tmp_path: Path, fake_endpoint) -> None:
    exact = fake_endpoint(["preflight"], 1, exact_usage=True)
    rough = fake_endpoint(["preflight"], 1)
    report = _run(tmp_path, [f"exact={exact.url},tokenizer=bundled",
                             f"rough={rough.url},tokenizer=bundled", f"unknown={rough.url}"],
                  ["preflight"], 1)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    usage = {r["endpoint"]: r for r in rows if r["meta"]["check"] == "usage"}
    assert usage["exact"]["passed"] and usage["exact"]["detail"]["exact"] is True
    assert not usage["rough"]["passed"] and usage["rough"]["detail"]["exact"] is False
    assert usage["unknown"]["passed"] and usage["unknown"]["detail"]["exact"] is None
    assert report["endpoints"]["exact"]["suites"]["preflight"]["pass_at_1"] == 1.0


def test_programmed_latency_is_measured(tmp_path: Path, fake_endpoint) -> None:
    fake = fake_endpoint(["math", "tool-calls"], 6, latency_s=0.05)
    report = _run(tmp_path, [f"f={fake.url}"], ["math", "tool-calls"], 6)
    for suite, calls in (("math", 1), ("tool-calls", 2)):
        row = report["endpoints"]["f"]["suites"][suite]
        assert row["latency_p50_s"] >= 0.05 * calls  # a sample's calls run one after another
    assert report["endpoints"]["f"]["suites"]["tool-calls"]["ttft_p50_s"] is not None


def test_endless_429s_become_errors_and_are_not_cached(tmp_path: Path, fake_endpoint) -> None:
    from openk2.evals.cache import AnswerCache

    fake = fake_endpoint(["math", "preflight"], 2, storm=10_000, retry_after_s=0.0)
    cfg = RunConfig(endpoints=[parse_endpoint(f"f={fake.url}")], suites=["math", "preflight"],
                    n=2, out_dir=tmp_path, html=False,
                    suite_options={"preflight": {"checks": ("n", "stream_end")}},
                    retry=RetryConfig(attempts=1, base_delay_s=0.0, max_rate_limit_retries=1))
    report = run(cfg)
    for suite in ("math", "preflight"):
        row = report["endpoints"]["f"]["suites"][suite]
        assert row["errors"] == row["samples"] and row["pass_at_1"] == 0.0
    assert len(AnswerCache(tmp_path / "cache.sqlite")) == 0
