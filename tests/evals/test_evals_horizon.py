"""The horizon fit recovers ln(0.5)/ln(p) from a fake whose steps are each right with p."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from openk2.evals.client import RetryConfig
from openk2.evals.endpoints import parse_endpoint
from openk2.evals.horizon_fit import closed_form_horizon, fit_logistic, horizon_at
from openk2.evals.runner import RunConfig, run


def test_fit_recovers_a_known_logistic() -> None:
    a, b = 3.0, -1.5
    steps = [2**k for k in range(7) for _ in range(200)]
    weights = [1 / (1 + math.exp(-(a + b * math.log2(s)))) for s in steps]
    fa, fb = fit_logistic(steps, weights, ridge=1e-6)
    assert fa == pytest.approx(a, abs=0.01) and fb == pytest.approx(b, abs=0.01)
    assert horizon_at(fa, fb, 0.5) == pytest.approx(2**2, rel=0.02)
    assert horizon_at(1.0, 0.2, 0.5) is None
    assert closed_form_horizon(0.95, 0.5) == pytest.approx(13.51, abs=0.01)


def test_horizon_suite_recovers_the_programmed_step_accuracy(tmp_path: Path,
                                                             fake_endpoint) -> None:
    n = 7 * 24  # 24 chains per step count of the default grid
    fake = fake_endpoint(["horizon"], n, step_accuracy=0.95)
    cfg = RunConfig(endpoints=[parse_endpoint(f"f={fake.url},concurrency=8")],
                    suites=["horizon"], n=n, out_dir=tmp_path,
                    retry=RetryConfig(base_delay_s=0.01))
    extra = run(cfg)["endpoints"]["f"]["suites"]["horizon"]["extra"]
    truth = math.log(0.5) / math.log(0.95)  # 13.5 steps
    assert extra["per_step_accuracy"] == pytest.approx(0.95, abs=0.02)
    assert extra["closed_form_h50"] == pytest.approx(truth, rel=0.35)
    assert extra["fit"]["slope_per_log2_step"] < 0
    assert truth / 1.6 < extra["horizon_50"] < truth * 1.6
    assert extra["horizon_80"] < extra["horizon_50"]
    assert extra["success_by_steps"]["1"] > extra["success_by_steps"]["64"]
    page = (tmp_path / "report.html").read_text()
    assert "Horizon: success vs steps" in page


def test_horizon_outside_the_grid_is_not_extrapolated() -> None:
    from openk2.evals.suites.horizon import HorizonSuite

    rows = [{"meta": {"steps": s}, "passed": False, "detail": {"correct_steps": [False] * s}}
            for s in (1, 2, 4, 8) for _ in range(3)]
    extra = HorizonSuite().summarize(rows)
    assert extra["horizon_50"] is None and extra["horizon_80"] is None
    assert any("below the shortest chain" in n for n in extra["horizon_notes"])
    assert extra["per_step_accuracy"] == 0.0


def _horizon_sim():
    """benchmarks/horizon_sim.py (a script, loaded by path)."""
    import importlib.util

    path = Path(__file__).parents[2] / "benchmarks" / "horizon_sim.py"
    spec = importlib.util.spec_from_file_location("horizon_sim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simulated_executor_follows_the_prompt_with_its_error_rate() -> None:
    """The figure's simulated endpoints solve from the prompt alone: right every time at
    p = 1, and at p = 0.9 an 8-step chain succeeds about 0.9^8 = 43% of the time."""
    from openk2.evals.suites.horizon import HorizonSuite

    sim = _horizon_sim()
    suite = HorizonSuite(steps=(8,))
    samples = suite.samples(400, seed=3)
    prompts = [s.calls[0].messages[0]["content"] for s in samples]
    perfect = [suite.score(s, [{"message": {"content": sim.execute(t, 1.0, i)}}]).passed
               for i, (s, t) in enumerate(zip(samples, prompts, strict=True))]
    assert all(perfect)
    noisy = [suite.score(s, [{"message": {"content": sim.execute(t, 0.9, i)}}]).passed
             for i, (s, t) in enumerate(zip(samples, prompts, strict=True))]
    assert abs(sum(noisy) / len(noisy) - 0.9**8) < 3 * math.sqrt(0.43 * 0.57 / 400)
    assert "cannot find" in sim.execute("no table here", 1.0, 0)
