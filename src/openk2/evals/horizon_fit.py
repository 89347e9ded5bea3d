"""The usable horizon: a METR-style logistic fit of success against log2(steps).

`P(success | N) = sigmoid(a + b log2 N)`, fitted by iteratively reweighted least squares
with a small ridge on the slope and intercept (what METR's `LogisticRegression(C=1/reg)`
does; numpy only). The horizon at success level p is `2^((logit p - a) / b)` steps, read at
50% and 80%. A non-negative slope (success not falling with length) has no horizon within
the data: it is reported as None with the reason, never extrapolated. Beside it, the closed
form `H_s = ln s / ln p` for a constant per-step accuracy p (arXiv 2509.09677).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def fit_logistic(
    steps: Sequence[float], success: Sequence[float], ridge: float = 0.1, iters: int = 100
) -> tuple[float, float]:
    """(a, b) of sigmoid(a + b log2 steps) by IRLS; success may be fractional (weighted)."""
    x = np.log2(np.asarray(steps, dtype=float))
    y = np.asarray(success, dtype=float)
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    penalty = ridge * np.eye(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        w = np.clip(p * (1 - p), 1e-9, None)
        grad = design.T @ (y - p) - penalty @ beta
        hess = design.T @ (design * w[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def horizon_at(a: float, b: float, level: float) -> float | None:
    """Steps at which the fitted success equals `level` (None if success does not fall)."""
    if b >= 0:
        return None
    return 2.0 ** ((math.log(level / (1 - level)) - a) / b)


def closed_form_horizon(step_accuracy: float, level: float) -> float | None:
    """`ln(level) / ln(p)`: steps until a chain of independent p-accurate steps drops to
    `level` (None for p >= 1: no decay; 0 for p = 0)."""
    if step_accuracy >= 1:
        return None
    if step_accuracy <= 0:
        return 0.0
    return math.log(level) / math.log(step_accuracy)
