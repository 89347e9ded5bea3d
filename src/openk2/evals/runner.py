"""Runs every suite against every endpoint and writes samples.jsonl, report.json, report.html.

Endpoints run concurrently, each under its own concurrency cap and pacer (`client.py`); the
calls of one sample go in order. Every answer is cached before it is scored, so a killed run
re-run with the same arguments sends only what it had not received. samples.jsonl is
rewritten from the start on each run (answers come back from the cache), one row per
(endpoint, suite, sample, repeat), flushed as it is scored.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from openk2.evals.cache import AnswerCache
from openk2.evals.calls import Answer
from openk2.evals.client import EndpointClient, RetryConfig
from openk2.evals.endpoints import Endpoint
from openk2.evals.suites import Sample, Suite, get_suite
from openk2.evals.summary import summarize_run


@dataclass(kw_only=True, slots=True)
class RunConfig:
    """What one `openk2 eval` run does."""

    endpoints: list[Endpoint]
    """Targets, each judged on every suite."""
    suites: list[str]
    """Suite names (see `openk2.evals.suites.SUITE_NAMES`)."""
    out_dir: Path
    """Where report.json, report.html and samples.jsonl go."""
    n: int = 20
    """Tasks per suite."""
    repeats: int = 1
    """Tries per task (k of pass^k)."""
    seed: int = 0
    """Seed of the generated suite data."""
    cache_path: Path | None = None
    """SQLite answer cache (default: out_dir/cache.sqlite)."""
    retry: RetryConfig = field(default_factory=RetryConfig)
    """Retry and timeout policy."""
    html: bool = True
    """Also write report.html (matplotlib figures embedded)."""
    suite_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-suite constructor keywords (e.g. horizon step grid), keyed by suite name."""

    def __post_init__(self) -> None:
        if not self.endpoints or not self.suites:
            raise ValueError("need at least one --endpoint and one --suite")
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique, got {names}")
        if self.n < 1 or self.repeats < 1:
            raise ValueError("n and repeats must be >= 1")


def run(cfg: RunConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the eval and return the report (also written to out_dir)."""
    return asyncio.run(run_async(cfg, progress))


async def run_async(
    cfg: RunConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """`run` inside a running event loop."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    suites = {name: _suite(cfg, name) for name in cfg.suites}
    samples = {name: suite.samples(cfg.n, cfg.seed) for name, suite in suites.items()}
    cache = AnswerCache(cfg.cache_path or cfg.out_dir / "cache.sqlite")
    clients: list[EndpointClient] = []
    started = time.time()
    try:
        clients += [EndpointClient(e, cache, cfg.retry) for e in cfg.endpoints]
        with (cfg.out_dir / "samples.jsonl").open("w") as log:
            rows = await asyncio.gather(*(
                _run_endpoint(c, suites, samples, cfg.repeats, log, progress) for c in clients))
    finally:
        for client in clients:
            await client.aclose()
        cache.close()
    report = summarize_run(cfg, suites, [r for per in rows for r in per], clients, started)
    _write_reports(cfg, report)
    return report


def _suite(cfg: RunConfig, name: str) -> Suite:
    return get_suite(name, **cfg.suite_options.get(name, {}))


async def _run_endpoint(
    client: EndpointClient, suites: dict[str, Suite], samples: dict[str, list[Sample]],
    repeats: int, log: IO[str], progress: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    jobs = [(name, s, epoch) for name in suites for s in samples[name] for epoch in range(repeats)]
    rows = await asyncio.gather(*(
        _run_sample(client, suites[name], s, epoch, log) for name, s, epoch in jobs))
    if progress is not None:
        progress(f"{client.endpoint.name}: {len(rows)} rows, {client.requests} calls sent, "
                 f"{client.errors} errors")
    return list(rows)


async def _run_sample(
    client: EndpointClient, suite: Suite, sample: Sample, epoch: int, log: IO[str]
) -> dict[str, Any]:
    answers: list[Answer] = []
    all_cached = True
    for slot, call in enumerate(sample.calls):
        answer, cached = await client.answer(call, epoch, slot)
        expected = client.endpoint.prompt_token_counts(list(call.messages), list(call.tools))
        if call.raw and expected is not None:
            answer = {**answer, "expected_prompt_tokens": expected}
        answers.append(answer)
        all_cached = all_cached and cached
    verdict = await asyncio.to_thread(suite.score, sample, answers)  # code runs tests
    row = _row(client.endpoint, suite.name, sample, epoch, answers, verdict)
    row["cached"] = all_cached
    log.write(json.dumps(row) + "\n")
    log.flush()
    return row


def _row(endpoint: Endpoint, suite: str, sample: Sample, epoch: int, answers: list[Answer],
         verdict: Any) -> dict[str, Any]:
    usage = [a.get("usage") or {} for a in answers]
    prompt = sum(int(u.get("prompt_tokens") or 0) for u in usage)
    completion = sum(int(u.get("completion_tokens") or 0) for u in usage)
    cached = sum(int(u.get("cached_tokens") or 0) for u in usage)
    errors = [a["error"] for a in answers if "error" in a]
    return {
        "endpoint": endpoint.name, "suite": suite, "sample": sample.id, "epoch": epoch,
        "meta": sample.meta, "passed": verdict.passed, "score": verdict.score,
        "detail": verdict.detail, "error": errors[0] if errors else None,
        "latency_s": sum(float(a.get("latency_s") or 0.0) for a in answers),
        "ttft_s": answers[0].get("ttft_s") if answers else None,
        "span": _span(answers),
        "prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached,
        "cost_usd": endpoint.cost(prompt, completion, cached),
        "answers": [_brief(a) for a in answers],
    }


def _span(answers: list[Answer]) -> list[float] | None:
    """[first send, last receipt] in wall-clock seconds (for aggregate throughput)."""
    ends = [(a["t_end"] - a.get("latency_s", 0.0), a["t_end"]) for a in answers if "t_end" in a]
    if not ends:
        return None
    return [min(s for s, _ in ends), max(e for _, e in ends)]


def _brief(answer: Answer) -> dict[str, Any]:
    """What samples.jsonl keeps of an answer (the message, not the raw logprobs)."""
    if "error" in answer:
        return {"error": answer["error"]}
    return {"message": answer.get("message"), "finish_reason": answer.get("finish_reason"),
            "status": answer.get("status", 200)}


def _write_reports(cfg: RunConfig, report: dict[str, Any]) -> None:
    (cfg.out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if cfg.html:
        from openk2.evals.html import write_html

        write_html(report, cfg.out_dir / "report.html")


def stderr_progress(message: str) -> None:
    """Default progress sink of the CLI."""
    print(message, file=sys.stderr, flush=True)
