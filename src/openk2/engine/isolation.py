"""Per-sequence fault isolation: one sequence that cannot run must not take the batch with it.

A step does two kinds of work, and each fails differently.

* **Sampling** (penalties, top-k/p, guides, logprobs) is per row by nature. If the batched call
  raises, every row is sampled again on its own and only the rows that raise fail. Each row's
  generator is restored first, so a seeded row draws exactly what it would have drawn in a batch
  without the bad row (the sampler already guarantees batch-independent draws).
* **The forward pass** computes the whole batch at once, so a failure says nothing about which
  row caused it. It is retried by bisection: each half is run again, down to single rows, and
  only rows that fail alone are failed. Retrying is safe because a forward pass only writes the
  latents of the scheduled positions into their own slots, and no sequence state changes until
  the step succeeds (`Scheduler.update_from_output`). A failure that does not depend on the input
  (a dead device, a broken model) fails every row alone too, at the cost of ~2n forward calls in
  that one step; a memory failure of a large batch may pass in halves, which then keep running.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

import torch

from openk2.engine.runner import ModelRunner
from openk2.engine.sampler import SampleRow, sample
from openk2.engine.scheduler import ScheduledSeq
from openk2.engine.sequence import TokenLogprob

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ForwardResult:
    """The rows that sample, their logits [R, V], and the rows whose forward pass failed."""

    rows: list[ScheduledSeq] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)
    failed: list[tuple[ScheduledSeq, Exception]] = field(default_factory=list)

    def logits_RV(self) -> torch.Tensor:
        return torch.cat(self.logits) if self.logits else torch.empty(0, 0)


def forward_isolating(runner: ModelRunner, scheduled: Seq[ScheduledSeq]) -> ForwardResult:
    """Run the step's forward pass; on failure bisect until the failing rows are alone."""
    result = ForwardResult()
    _forward_into(runner, list(scheduled), result, first=True)
    return result


def _forward_into(
    runner: ModelRunner, scheduled: list[ScheduledSeq], result: ForwardResult, *, first: bool
) -> None:
    try:
        rows, logits = runner.run(scheduled)
    except Exception as exc:
        if first:
            log.exception("forward pass of %d rows failed; bisecting", len(scheduled))
        if len(scheduled) == 1:
            result.failed.append((scheduled[0], exc))
            return
        half = len(scheduled) // 2
        _forward_into(runner, scheduled[:half], result, first=False)
        _forward_into(runner, scheduled[half:], result, first=False)
        return
    result.rows.extend(rows)
    if rows:
        result.logits.append(logits)


def sample_isolating(
    logits_RV: torch.Tensor, rows: list[SampleRow]
) -> list[TokenLogprob | Exception]:
    """One token per row, or the exception of each row that cannot be sampled."""
    states = [row.seq.generator.get_state() for row in rows]
    try:
        return list(sample(logits_RV, rows))
    except Exception:
        log.exception("batched sampling of %d rows failed; sampling row by row", len(rows))
    out: list[TokenLogprob | Exception] = []
    for r, (row, state) in enumerate(zip(rows, states, strict=True)):
        row.seq.generator.set_state(state)
        try:
            out.append(sample(logits_RV[r : r + 1], [row])[0])
        except Exception as exc:
            out.append(exc)
    return out


def describe(exc: BaseException) -> str:
    """The error text a client sees for its failed sequence (no traceback)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
