"""Per-task outcomes of a finished run, joined back to the requests that produced them.

samples.jsonl keeps each task's verdict but not its prompt (the suites regenerate prompts
from the seed), so this rebuilds the requests from report.json's config and pairs them with
two endpoints' verdicts: the training data of `openk2 route-train`'s win-score router.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from openk2.evals.suites import get_suite


def requests_by_sample(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first request body of every task of the run (messages, tools), by sample id."""
    options = config.get("suite_options") or {}
    bodies = {}
    for name in config["suites"]:
        suite = get_suite(name, **options.get(name, {}))
        for sample in suite.samples(int(config["n"]), int(config["seed"])):
            call = sample.calls[0]
            body: dict[str, Any] = {"messages": list(call.messages)}
            if call.tools:
                body["tools"] = list(call.tools)
            bodies[sample.id] = {**body, "_suite": name}
    return bodies


def win_examples(run_dir: Path, weak: str,
                 strong: str) -> list[tuple[dict[str, Any], float]]:
    """(request body, 1.0 if `weak` passed at least as often as `strong` on it, else 0.0)."""
    try:
        config = json.loads((run_dir / "report.json").read_text())["config"]
        rows = [json.loads(line) for line in (run_dir / "samples.jsonl").open()]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{run_dir}: not a finished openk2 eval run ({exc!r})") from exc
    passed: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in rows:
        passed[(r["endpoint"], r["sample"])].append(bool(r["passed"]))
    for name in (weak, strong):
        if not any(ep == name for ep, _ in passed):
            raise ValueError(f"{run_dir}: endpoint {name!r} is not in this run")
    out = []
    for sample_id, body in requests_by_sample(config).items():
        w, s = passed.get((weak, sample_id)), passed.get((strong, sample_id))
        if w and s:
            win = sum(w) / len(w) >= sum(s) / len(s)
            out.append(({k: v for k, v in body.items() if k != "_suite"}, float(win)))
    return out
