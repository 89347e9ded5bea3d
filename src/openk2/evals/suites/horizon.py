"""`horizon`: long-horizon execution, a chain of N dependent key lookups for N on a log grid.

The prompt lists key -> value pairs (5-letter keys, shuffled, with distractor pairs); from a
start key the model follows N lookups, writing each key it reaches, then `FINAL: <key>`.
Planning is given away (the procedure is spelled out), so what is measured is execution.
Per sample: success (final key right), per-step accuracy along the path (step t right);
across samples: success vs N, the METR-style logistic fit and its 50%/80% horizons, the
per-step accuracy (a step right given the previous one was) and its closed-form horizons,
and accuracy by step index (where in the chain errors start).
"""

from __future__ import annotations

import random
import re
import string
from collections import defaultdict
from typing import Any

from openk2.evals.calls import Answer, answer_text, user_call
from openk2.evals.horizon_fit import closed_form_horizon, fit_logistic, horizon_at
from openk2.evals.suites.base import Sample, Score, failed_call

DEFAULT_STEPS = (1, 2, 4, 8, 16, 32, 64)
_KEY = re.compile(r"\b[a-z]{5}\b")


def _keys(rng: random.Random, count: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < count:
        seen.add("".join(rng.choices(string.ascii_lowercase, k=5)))
    keys = sorted(seen)  # a set's order changes between processes; the seed must not
    rng.shuffle(keys)
    return keys


def chain(rng: random.Random, steps: int) -> tuple[list[tuple[str, str]], list[str]]:
    """A shuffled key -> value table with a chain of `steps` lookups in it (and distractor
    pairs), and the chain's keys from the start key on."""
    keys = _keys(rng, steps + 1 + steps // 2 + 4)
    path, spare = keys[: steps + 1], keys[steps + 1 :]
    pairs = [(path[i], path[i + 1]) for i in range(steps)]
    pairs += [(spare[i], rng.choice(keys)) for i in range(len(spare))]
    rng.shuffle(pairs)
    return pairs, path


def _task(rng: random.Random, steps: int) -> tuple[str, list[str]]:
    pairs, chain_keys = chain(rng, steps)
    table = "\n".join(f"{k} -> {v}" for k, v in pairs)
    text = (f"Here is a table of key -> value pairs:\n{table}\n\nStart at key '{chain_keys[0]}'. "
            f"Look up its value; that value is the next key. Do this {steps} time(s). Write "
            f"each key you reach on its own line, in order, then a last line 'FINAL: <key>'.")
    return text, chain_keys[1:]


def read_path(text: str) -> tuple[list[str], str | None]:
    """The keys the model wrote before `FINAL:`, and the final key."""
    head, sep, tail = text.rpartition("FINAL:")
    final = _KEY.findall(tail)
    body = head if sep else text
    return _KEY.findall(body), (final[0] if final else None)


class HorizonSuite:
    """Key-lookup chains of N steps on a log grid."""

    name = "horizon"

    def __init__(self, steps: tuple[int, ...] = DEFAULT_STEPS) -> None:
        if not steps or min(steps) < 1:
            raise ValueError(f"horizon steps must be >= 1, got {steps}")
        self.steps = tuple(sorted(set(steps)))

    def samples(self, n: int, seed: int) -> list[Sample]:
        rng = random.Random(f"horizon:{seed}")
        out = []
        for i in range(n):
            steps = self.steps[i % len(self.steps)]
            text, path = _task(rng, steps)
            call = user_call(text, max_tokens=8 * steps + 32)
            out.append(Sample(id=f"horizon-{seed}-{i}", calls=(call,), reference={"path": path},
                              meta={"steps": steps}))
        return out

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        truth = sample.reference["path"]
        error = failed_call(answers)
        if error:
            return Score(passed=False, detail={"error": error, "correct_steps": [False] * len(
                truth)})
        path, final = read_path(answer_text(answers[0]))
        correct = [i < len(path) and path[i] == key for i, key in enumerate(truth)]
        return Score(passed=final == truth[-1], score=sum(correct) / len(truth),
                     detail={"correct_steps": correct, "final": final})

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        path = sample.reference["path"]
        return {"role": "assistant", "content": "\n".join(path) + f"\nFINAL: {path[-1]}"}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            return {}
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            counts[r["meta"]["steps"]][0] += int(r["passed"])
            counts[r["meta"]["steps"]][1] += 1
        steps = [r["meta"]["steps"] for r in rows]
        a, b = fit_logistic(steps, [r["passed"] for r in rows])
        p_step = _step_accuracy(rows)
        h50, note50 = _within(horizon_at(a, b, 0.5), min(steps), max(steps), 0.5)
        h80, note80 = _within(horizon_at(a, b, 0.8), min(steps), max(steps), 0.8)
        return {
            "success_by_steps": {str(k): v[0] / v[1] for k, v in sorted(counts.items())},
            "counts_by_steps": {str(k): v for k, v in sorted(counts.items())},
            "fit": {"intercept": a, "slope_per_log2_step": b},
            "horizon_50": h50, "horizon_80": h80,
            "horizon_notes": [n for n in (note50, note80) if n],
            "per_step_accuracy": p_step,
            "closed_form_h50": None if p_step is None else closed_form_horizon(p_step, 0.5),
            "closed_form_h80": None if p_step is None else closed_form_horizon(p_step, 0.8),
            "accuracy_by_step_index": _by_index(rows),
        }


def _within(h: float | None, lo: int, hi: int, level: float) -> tuple[float | None, str | None]:
    """A fitted horizon inside the measured step range, else None and why (no
    extrapolation: a horizon outside the grid is a statement about chains never run)."""
    pct = f"{level:.0%}"
    if h is None:
        return None, f"{pct}: success does not fall with steps"
    if h < lo:
        return None, f"{pct}: below the shortest chain ({lo} steps)"
    if h > hi:
        return None, f"{pct}: beyond the longest chain ({hi} steps)"
    return h, None


def _step_accuracy(rows: list[dict[str, Any]]) -> float | None:
    """P(step t right | step t-1 right), pooled over all chains."""
    right = tried = 0
    for r in rows:
        prev = True
        for ok in r["detail"].get("correct_steps", []):
            if prev:
                tried += 1
                right += int(ok)
            prev = ok
    return right / tried if tried else None


def _by_index(rows: list[dict[str, Any]]) -> list[float]:
    by: dict[int, list[bool]] = defaultdict(list)
    for r in rows:
        for i, ok in enumerate(r["detail"].get("correct_steps", [])):
            by[i].append(ok)
    return [sum(by[i]) / len(by[i]) for i in sorted(by)]


def report_figures(report: dict[str, Any]) -> dict[str, bytes]:
    """Success vs steps with the fit and horizons; accuracy by step index."""
    from openk2.evals.plots import horizon_figures

    return horizon_figures(report)
