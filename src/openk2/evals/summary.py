"""The report: per endpoint and suite, pass@1 with its interval, pass^k, latency, tokens, cost.

Cost per successful task is the run's dollars divided by its successes: a cheap endpoint that
fails half the tasks costs twice its per-call price per task that got done. Latency and
throughput figures come from the answers as first received, so a resumed run reports the
same numbers as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from openk2 import __version__
from openk2.evals.metrics import pass_hat_k, percentile, wilson


def suite_row(rows: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """The summary of one (endpoint, suite): the fields `--json` promises, and more."""
    passed = sum(r["passed"] for r in rows)
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_task[r["sample"]].append(r["passed"])
    latencies = [r["latency_s"] for r in rows if r["error"] is None]
    ttfts = [r["ttft_s"] for r in rows if r["error"] is None and r["ttft_s"] is not None]
    completion = sum(r["completion_tokens"] for r in rows)
    busy = sum(latencies)
    cost = sum(r["cost_usd"] for r in rows)
    lo, hi = wilson(passed, len(rows))
    counts = [(sum(v), len(v)) for v in per_task.values()]
    return {
        "n": len(per_task), "samples": len(rows), "passed": passed,
        "pass_at_1": passed / len(rows) if rows else None, "ci95": [lo, hi],
        "pass_hat_k": pass_hat_k(counts, repeats) if repeats > 1 else None, "k": repeats,
        "mean_score": sum(r["score"] for r in rows) / len(rows) if rows else None,
        "errors": sum(r["error"] is not None for r in rows),
        "latency_p50_s": percentile(latencies, 0.5), "latency_p95_s": percentile(latencies, 0.95),
        "ttft_p50_s": percentile(ttfts, 0.5),
        "output_tok_per_s": completion / busy if busy > 0 else None,
        "tokens": {"prompt": sum(r["prompt_tokens"] for r in rows), "completion": completion,
                   "cached": sum(r["cached_tokens"] for r in rows)},
        "cost_usd": cost, "cost_per_success": cost / passed if passed else None,
    }


def aggregate_throughput(rows: list[dict[str, Any]]) -> float | None:
    """Completion tokens per second of wall clock over the span the answers were received in
    (what the endpoint sustained at the run's concurrency; an interrupted run's gap counts)."""
    spans = [r["span"] for r in rows if r.get("span")]
    if not spans:
        return None
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    tokens = sum(r["completion_tokens"] for r in rows if r.get("span"))
    return tokens / wall if wall > 0 else None


def summarize_run(cfg: Any, suites: dict[str, Any], rows: list[dict[str, Any]],
                  clients: list[Any], started: float) -> dict[str, Any]:
    """The whole report.json."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[(r["endpoint"], r["suite"])].append(r)
    endpoints: dict[str, Any] = {}
    for client in clients:
        ep = client.endpoint
        per_suite = {}
        for name, suite in suites.items():
            mine = grouped[(ep.name, name)]
            per_suite[name] = {**suite_row(mine, cfg.repeats), "extra": suite.summarize(mine)}
        mine_all = [r for r in rows if r["endpoint"] == ep.name]
        endpoints[ep.name] = {
            "aggregate_output_tok_per_s": aggregate_throughput(mine_all),
            "url": ep.url, "model": ep.model,
            "prices_per_1m": {"in": ep.price_in, "out": ep.price_out, "cached": ep.price_cached},
            "calls_sent": client.requests, "call_errors": client.errors,
            "suites": per_suite,
        }
    return {
        "openk2_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime(started)),
        "wall_s": time.time() - started,
        "config": {"suites": cfg.suites, "n": cfg.n, "repeats": cfg.repeats, "seed": cfg.seed,
                   "suite_options": {k: v for k, v in cfg.suite_options.items() if v}},
        "endpoints": endpoints,
    }
