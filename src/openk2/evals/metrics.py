"""Pass rates with confidence intervals, tau-bench pass^k, latency percentiles.

- Wilson score interval for pass@1 (sound at small n and near 0 or 1, unlike the normal
  approximation);
- pass^k per task = C(c, k) / C(n, k) with c successes in n repeats, averaged over tasks
  (tau-bench): the chance that k fresh tries all succeed, the reliability an agent needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson 95% interval of a binomial proportion ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pass_hat_k(per_task: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean over tasks of C(c, k)/C(n, k) for (successes c, tries n); None if any n < k."""
    if not per_task or any(n < k for _, n in per_task):
        return None
    return sum(math.comb(c, k) / math.comb(n, k) for c, n in per_task) / len(per_task)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def diff_ci(p1: float, n1: int, p2: float, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid-score interval for p2 - p1 (from the two Wilson intervals)."""
    l1, u1 = wilson(round(p1 * n1), n1, z)
    l2, u2 = wilson(round(p2 * n2), n2, z)
    d = p2 - p1
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return max(-1.0, lower), min(1.0, upper)
