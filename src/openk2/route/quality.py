"""The cost/quality-aware strategy: the cheapest deployment good enough for this request class.

The quality of a deployment is what `openk2 eval` measured: pass@1 per suite in report.json,
and a request's class is an eval suite name (from a rule's `class:` or the caller's
`x-openk2-class` header). The cheapest deployment whose measured pass@1 for that class
clears the group's threshold goes first; the others follow best-first, so a fallback
trades cost for quality rather than the reverse. A class the report never measured (or no
class) goes best-first: without a measurement, quality is not gambled on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openk2.route.config import Deployment

DEFAULT_THRESHOLD = 0.9


class QualityTable:
    """pass@1 by (eval endpoint, suite), read from one report.json."""

    def __init__(self, scores: dict[str, dict[str, float]]) -> None:
        self.scores = scores

    @classmethod
    def load(cls, path: Path) -> QualityTable:
        """Read an `openk2 eval` report; a file of another shape is a clear error."""
        try:
            report = json.loads(path.read_text())
            endpoints: dict[str, Any] = report["endpoints"]
            scores = {name: {suite: float(row["pass_at_1"])
                             for suite, row in ep["suites"].items()
                             if row.get("pass_at_1") is not None}
                      for name, ep in endpoints.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not an openk2 eval report.json ({exc!r})") from exc
        return cls(scores)

    def quality(self, d: Deployment, request_class: str | None) -> float | None:
        """Measured pass@1 of the deployment on the class (its mean over suites if no class);
        None when never measured."""
        mine = self.scores.get(d.measured_as) or {}
        if request_class is None:
            return sum(mine.values()) / len(mine) if mine else None
        return mine.get(request_class)

    def order(self, ds: list[Deployment], request_class: str | None,
              threshold: float) -> list[Deployment]:
        """Cheapest deployment clearing the threshold first, then the rest best-first."""
        if all(self.quality(d, request_class) is None for d in ds):
            request_class = None  # never measured: best on average first
        best_first = sorted(ds, key=lambda d: -(self.quality(d, request_class) or -1.0))
        if request_class is None:
            return best_first
        good = [d for d in ds if (self.quality(d, request_class) or 0.0) >= threshold]
        if not good:
            return best_first
        chosen = min(good, key=lambda d: d.blended_price)
        return [chosen] + [d for d in best_first if d is not chosen]
