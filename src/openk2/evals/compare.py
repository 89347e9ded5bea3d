"""`openk2 eval compare A.json B.json`: what changed between two runs, with intervals.

Rows are matched by (endpoint, suite), or, when the two runs name their endpoints
differently and each has one, by suite alone (A's endpoint against B's). The pass@1
difference gets Newcombe's interval; a change whose interval excludes 0 is flagged.
"""

from __future__ import annotations

from typing import Any

from openk2.evals.metrics import diff_ci


def _pairs(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str]]:
    ea, eb = a["endpoints"], b["endpoints"]
    common = [n for n in ea if n in eb]
    if common:
        return [(n, n) for n in common]
    if len(ea) == 1 and len(eb) == 1:
        return [(next(iter(ea)), next(iter(eb)))]
    raise ValueError("the reports share no endpoint name (and are not one endpoint each)")


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per (endpoint, suite): pass@1 in each, the difference B - A, its 95% CI, significance."""
    rows = []
    for name_a, name_b in _pairs(a, b):
        sa, sb = a["endpoints"][name_a]["suites"], b["endpoints"][name_b]["suites"]
        for suite in (s for s in sa if s in sb):
            ra, rb = sa[suite], sb[suite]
            pa, pb = ra["pass_at_1"] or 0.0, rb["pass_at_1"] or 0.0
            lo, hi = diff_ci(pa, ra["samples"], pb, rb["samples"])
            rows.append({
                "endpoint": name_a if name_a == name_b else f"{name_a} -> {name_b}",
                "suite": suite, "a": pa, "b": pb, "delta": pb - pa, "ci95": [lo, hi],
                "significant": lo > 0 or hi < 0,
                "cost_per_success": [ra.get("cost_per_success"), rb.get("cost_per_success")],
                "latency_p50_s": [ra.get("latency_p50_s"), rb.get("latency_p50_s")],
            })
    return {"rows": rows}


def format_comparison(diff: dict[str, Any]) -> str:
    """A plain-text table of the comparison."""
    lines = [f"{'endpoint':<16} {'suite':<11} {'A':>6} {'B':>6} {'B-A':>7}  95% CI"]
    for r in diff["rows"]:
        mark = " *" if r["significant"] else ""
        lines.append(f"{r['endpoint']:<16} {r['suite']:<11} {r['a']:6.3f} {r['b']:6.3f} "
                     f"{r['delta']:+7.3f}  [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]{mark}")
    return "\n".join(lines)
