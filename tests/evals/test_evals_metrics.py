"""Wilson intervals, pass^k, percentiles and the difference interval, against hand values."""

from __future__ import annotations

import math

import pytest

from openk2.evals.metrics import diff_ci, pass_hat_k, percentile, wilson


def test_wilson_matches_the_closed_form() -> None:
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(0, 10)[0] == pytest.approx(0.0)


def test_pass_hat_k_is_the_tau_bench_estimator() -> None:
    # task 1: 3 of 4, task 2: 4 of 4 -> (C(3,2)/C(4,2) + 1) / 2
    assert pass_hat_k([(3, 4), (4, 4)], 2) == pytest.approx((3 / 6 + 1) / 2)
    assert pass_hat_k([(1, 4)], 2) == 0.0
    assert pass_hat_k([(2, 2)], 3) is None
    assert pass_hat_k([(5, 8)], 1) == pytest.approx(5 / 8)


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([], 0.5) is None


def test_diff_ci_contains_the_difference_and_excludes_zero_when_far() -> None:
    lo, hi = diff_ci(0.5, 100, 0.9, 100)
    assert lo < 0.4 < hi and lo > 0
    lo, hi = diff_ci(0.5, 10, 0.6, 10)
    assert lo < 0 < hi
    assert math.isclose(sum(diff_ci(0.5, 50, 0.5, 50)), 0.0, abs_tol=1e-12)
