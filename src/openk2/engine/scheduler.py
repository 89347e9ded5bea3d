"""Continuous batching with chunked prefill, in plain Python (no model, no torch).

Each step gets a token budget. Running sequences go first, oldest first: decoding rows (one token
each) before rows still prefilling, which take chunks of what is left. Waiting sequences are
admitted after that, first come first served, taking cached prefix pages and a first prefill
chunk, so a long prompt never stalls the streams already running. When a running row needs a
page and none is free, the most recently admitted row is preempted: its pages are freed and it
goes back to the head of the queue to be recomputed later (with prefix reuse, mostly from
cache). Requests that do not fit wait; nothing fails for lack of pages.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from openk2.engine.block_manager import BlockManager
from openk2.engine.sequence import FinishReason, Sequence, SequenceStatus


@dataclass(slots=True)
class ScheduledSeq:
    """One row of a step: compute `num_new_tokens` tokens of `seq` from its first uncomputed."""

    seq: Sequence
    num_new_tokens: int

    @property
    def start(self) -> int:
        """Position of the first token this step computes."""
        return self.seq.num_computed_tokens

    @property
    def samples(self) -> bool:
        """True when this chunk reaches the end of the sequence, so a new token is sampled."""
        return self.seq.num_computed_tokens + self.num_new_tokens == len(self.seq)


@dataclass(slots=True)
class SchedulerOutput:
    """What one step computes, and which rows were preempted to make room."""

    scheduled: list[ScheduledSeq] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def num_batched_tokens(self) -> int:
        return sum(s.num_new_tokens for s in self.scheduled)

    @property
    def is_empty(self) -> bool:
        return not self.scheduled


class Scheduler:
    """Decides every step which sequences run and how many of their tokens are computed."""

    def __init__(self, block_manager: BlockManager, max_num_seqs: int, max_num_batched_tokens: int):
        self.block_manager = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        """Queue a sequence; it must fit in the cache on its own (the engine checks lengths)."""
        needed = self.block_manager.blocks_needed(seq.num_prompt_tokens + seq.max_tokens)
        if needed > self.block_manager.num_blocks:
            raise ValueError(
                f"sequence needs {needed} pages, the cache has {self.block_manager.num_blocks}"
            )
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> SchedulerOutput:
        """Pick this step's rows: running ones first (preempting if needed), then new ones."""
        out = SchedulerOutput()
        budget = self._schedule_running(out, self.max_num_batched_tokens)
        if not out.preempted:
            self._schedule_waiting(out, budget)
        return out

    def update_from_output(self, out: SchedulerOutput) -> None:
        """Mark the step's tokens computed and publish newly full pages for prefix reuse."""
        for item in out.scheduled:
            item.seq.num_computed_tokens += item.num_new_tokens
            self.block_manager.commit(item.seq)

    def finish(self, seq: Sequence, reason: FinishReason) -> None:
        """End a sequence (stop, length or abort) and free its pages at once."""
        if seq.is_finished:
            return
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        self.block_manager.free(seq)

    def _schedule_running(self, out: SchedulerOutput, budget: int) -> int:
        # Decoding rows first, so a prefill chunk never takes the budget they need.
        decoding = [s for s in self.running if s.num_uncomputed_tokens == 1]
        queue = decoding + [s for s in self.running if s.num_uncomputed_tokens > 1]
        while queue and budget > 0:
            seq = queue.pop(0)
            num_new = min(seq.num_uncomputed_tokens, budget)
            if num_new <= 0:
                continue
            if not self._grow_or_preempt(seq, num_new, queue, out):
                break
            out.scheduled.append(ScheduledSeq(seq, num_new))
            budget -= num_new
        return budget

    def _grow_or_preempt(
        self, seq: Sequence, num_new: int, queue: list[Sequence], out: SchedulerOutput
    ) -> bool:
        """Make room for `seq`'s chunk, preempting later rows; False if `seq` itself yielded."""
        while not self.block_manager.grow(seq, seq.num_computed_tokens + num_new):
            victim = queue.pop() if queue else seq
            self._preempt(victim)
            out.preempted.append(victim)
            if victim is seq:
                return False
        return True

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.reset_for_recompute()
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def _schedule_waiting(self, out: SchedulerOutput, budget: int) -> None:
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            cached = self.block_manager.match_prefix(seq)
            num_cached = len(cached) * self.block_manager.block_size
            num_new = min(len(seq) - num_cached, budget)
            if not self.block_manager.allocate(seq, cached, num_cached + num_new):
                break
            self.waiting.popleft()
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            out.scheduled.append(ScheduledSeq(seq, num_new))
            budget -= num_new
