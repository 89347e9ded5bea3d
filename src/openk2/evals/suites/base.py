"""What a suite is: seeded samples, a pure checker, and a perfect endpoint's answers.

A suite generates its samples from a seed (no download, same data on every machine), scores
one sample from the endpoint's answers with a pure function, and can say what a perfect
endpoint would have answered (`ideal`): the checker's own test (an ideal answer must pass)
and the fake endpoints of the tests, which answer right with a programmed probability.
`summarize` adds the suite's own figures (schema accuracy, horizon fit, ...) to the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from openk2.evals.calls import Answer, Call


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One task: the calls it makes and what a right answer is."""

    id: str
    """Stable id (suite, seed and index), the row key in samples.jsonl."""
    calls: tuple[Call, ...]
    """Requests sent for this task (most suites send one)."""
    reference: dict[str, Any]
    """What the checker compares against (JSON)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Grid coordinates and category (steps, length, depth, BFCL category...)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Score:
    """The checker's verdict on one sample."""

    passed: bool
    """The task succeeded."""
    score: float = 0.0
    """Partial credit in [0, 1] (per-step accuracy, F1...); equals `passed` when binary."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Why: kept in samples.jsonl and read by `summarize`."""


class Suite(Protocol):
    """A family of tasks with a checker."""

    name: str

    def samples(self, n: int, seed: int) -> list[Sample]:
        """`n` tasks from `seed` (deterministic)."""
        ...

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        """Judge one sample from the answers to its calls (in order)."""
        ...

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        """The assistant message a perfect endpoint returns for call `call_index`."""
        ...

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Suite-specific figures over the rows of one endpoint (may be empty)."""
        ...


def binary(passed: bool, **detail: Any) -> Score:
    """A pass/fail score."""
    return Score(passed=passed, score=float(passed), detail=detail)


def failed_call(answers: list[Answer]) -> str | None:
    """The first endpoint error among the answers, if any."""
    for answer in answers:
        if "error" in answer:
            return str(answer["error"])
    return None


def no_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For suites with nothing beyond pass rates."""
    return {}
