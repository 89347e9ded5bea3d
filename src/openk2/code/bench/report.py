"""Aggregate bench results: pass@1, pass^k, steps, tokens, wall time and tests edited."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openk2.code.bench.run import TaskResult


def summarize(results: Sequence[TaskResult], *, model: str, repeats: int,
              elapsed_s: float = 0.0) -> dict[str, Any]:
    """The report object: totals over graded runs (skipped tasks are counted, not scored).

    `wall_s` sums the runs' own times; `elapsed_s` is the whole bench's (runs overlap)."""
    graded = [r for r in results if r.outcome != "skipped"]
    by_task: dict[str, list[TaskResult]] = {}
    for r in graded:
        by_task.setdefault(r.task, []).append(r)
    n = len(graded)
    tokens = sum(r.usage.get("total_tokens", 0) for r in graded)
    return {
        "model": model, "repeats": repeats, "tasks": len(by_task), "runs": n,
        "skipped": sorted({r.task for r in results if r.outcome == "skipped"}),
        "pass_at_1": round(sum(r.passed for r in graded) / n, 4) if n else 0.0,
        "pass_hat_k": round(sum(all(r.passed for r in rs) for rs in by_task.values())
                            / len(by_task), 4) if by_task else 0.0,
        "mean_steps": round(sum(r.steps for r in graded) / n, 2) if n else 0.0,
        "total_tokens": tokens, "mean_tokens": round(tokens / n, 1) if n else 0.0,
        "wall_s": round(sum(r.wall_s for r in graded), 2), "elapsed_s": round(elapsed_s, 2),
        "tests_edited": sorted({r.task for r in graded if r.tests_edited}),
        "results": [r.to_dict() for r in results],
    }  # fmt: skip


def text_report(report: dict[str, Any]) -> str:
    """A table of runs and the totals, for the terminal."""
    lines = [f"{'task':<22} {'#':>2} {'outcome':<8} {'steps':>5} {'tokens':>7} {'wall_s':>7}  "
             "tests edited"]
    for r in report["results"]:
        edited = ", ".join(r["tests_edited"]) or "-"
        lines.append(f"{r['task']:<22} {r['repeat']:>2} {r['outcome']:<8} {r['steps']:>5} "
                     f"{r['usage'].get('total_tokens', 0):>7} {r['wall_s']:>7.2f}  {edited}")
    lines.append(f"model {report['model']}: pass@1 {report['pass_at_1']:.1%} over "
                 f"{report['runs']} runs of {report['tasks']} tasks "
                 f"(pass^{report['repeats']} {report['pass_hat_k']:.1%}), mean steps "
                 f"{report['mean_steps']}, tokens {report['total_tokens']}, wall "
                 f"{report['wall_s']} s (elapsed {report['elapsed_s']} s), tests edited in "
                 f"{len(report['tests_edited'])} task(s)")
    if report["skipped"]:
        lines.append(f"skipped (missing executables): {', '.join(report['skipped'])}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    """`out_dir/report.json` (the directory is created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
