"""`/metrics` of the router, in Prometheus text format: requests by outcome, cost and latency
per deployment, spend per group and caller, and the latency average `least-latency` uses.

Written by hand like `openk2 serve`'s: the set is small and fixed. Latency is the upstream's
(request sent to last byte), so the proxy's own overhead is what `benchmarks/route.py`
measures, not this.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field

BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    """Cumulative-bucket histogram in seconds."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip([*map(str, BUCKETS_S), "+Inf"], self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
        return out + [f"{name}_sum{{{labels}}} {self.total}", f"{name}_count{{{labels}}} {self.n}"]


class RouteMetrics:
    """Counters the proxy updates per request and per upstream attempt."""

    def __init__(self) -> None:
        self.responses: Counter[tuple[str, int]] = Counter()
        """(group, status) of each answer sent to a client; group `-`: answered before a group
        was chosen (no or unknown key, caller over budget, malformed body)."""
        self.attempts: Counter[tuple[str, str]] = Counter()
        """(deployment, ok | failed | client_error) of each upstream attempt."""
        self.cost: Counter[str] = Counter()
        self.latency: dict[str, Histogram] = defaultdict(Histogram)

    def attempt(self, deployment: str, outcome: str, latency_s: float | None = None,
                cost: float = 0.0) -> None:
        """One upstream attempt and, when it answered, its latency and cost."""
        self.attempts[(deployment, outcome)] += 1
        self.cost[deployment] += cost
        if latency_s is not None:
            self.latency[deployment].observe(latency_s)

    def render(self, spend_group: dict[str, float], spend_key: dict[str, float],
               ewma: dict[str, float]) -> str:
        """The whole page."""
        lines = ["# TYPE openk2_route_responses_total counter"]
        lines += [f'openk2_route_responses_total{{group="{g}",status="{s}"}} {n}'
                  for (g, s), n in sorted(self.responses.items())]
        lines.append("# TYPE openk2_route_upstream_attempts_total counter")
        lines += [f'openk2_route_upstream_attempts_total{{deployment="{d}",outcome="{o}"}} {n}'
                  for (d, o), n in sorted(self.attempts.items())]
        lines.append("# TYPE openk2_route_cost_usd_total counter")
        lines += [f'openk2_route_cost_usd_total{{deployment="{d}"}} {c}'
                  for d, c in sorted(self.cost.items())]
        lines.append("# TYPE openk2_route_upstream_latency_seconds histogram")
        for d, hist in sorted(self.latency.items()):
            lines += hist.lines("openk2_route_upstream_latency_seconds", f'deployment="{d}"')
        lines.append("# TYPE openk2_route_latency_ewma_seconds gauge")
        lines += [f'openk2_route_latency_ewma_seconds{{deployment="{d}"}} {v}'
                  for d, v in sorted(ewma.items())]
        lines.append("# TYPE openk2_route_group_spend_usd gauge")
        lines += [f'openk2_route_group_spend_usd{{group="{g}"}} {v}'
                  for g, v in sorted(spend_group.items())]
        lines.append("# TYPE openk2_route_caller_spend_usd gauge")
        lines += [f'openk2_route_caller_spend_usd{{key="{k}"}} {v}'
                  for k, v in sorted(spend_key.items())]
        return "\n".join(lines) + "\n"
