"""The scheduler in plain Python: budgets, chunked prefill, queueing and preemption."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.engine.block_manager import BlockManager
from openk2.engine.sampling_params import SamplingParams
from openk2.engine.scheduler import Scheduler
from openk2.engine.sequence import FinishReason, Sequence, SequenceStatus


def make(num_blocks: int = 16, block_size: int = 4, seqs: int = 4, budget: int = 16) -> Scheduler:
    return Scheduler(BlockManager(num_blocks, block_size), seqs, budget)


def seq(n: int, max_tokens: int = 8, first: int = 0) -> Sequence:
    return Sequence(f"r{first}", 0, list(range(first, first + n)), SamplingParams(), max_tokens)


def run_step(s: Scheduler, token: int = 1) -> list[tuple[Sequence, int]]:
    """One fake step: mark computed, append a token to rows that sampled."""
    out = s.schedule()
    rows = [(item.seq, item.num_new_tokens) for item in out.scheduled]
    sampled = [item.seq for item in out.scheduled if item.samples]
    s.update_from_output(out)
    for q in sampled:
        q.append_token(token)
    return rows


def test_long_prompt_is_prefilled_in_chunks_without_stalling_decodes() -> None:
    s = make(num_blocks=32, budget=8)
    short = seq(3)
    s.add(short)
    assert run_step(s) == [(short, 3)]
    long = seq(20, first=100)
    s.add(long)
    steps = [run_step(s) for _ in range(3)]
    assert steps[0] == [(short, 1), (long, 7)]  # the decode row keeps its token
    assert steps[1] == [(short, 1), (long, 7)]
    assert steps[2] == [(short, 1), (long, 6)]
    assert long.num_computed_tokens == 20 and len(long) == 21  # sampled after the last chunk


def test_max_num_seqs_and_budget_bound_admission() -> None:
    s = make(num_blocks=64, seqs=2, budget=16)
    seqs = [seq(4, first=10 * i) for i in range(3)]
    for q in seqs:
        s.add(q)
    rows = run_step(s)
    assert [r[0] for r in rows] == seqs[:2]
    assert list(s.waiting) == [seqs[2]]


def test_requests_queue_when_pages_run_out_and_start_when_freed() -> None:
    s = make(num_blocks=4, block_size=4, budget=32)
    a, b = seq(12, max_tokens=4), seq(8, max_tokens=4, first=50)
    s.add(a)
    s.add(b)
    run_step(s)
    assert a.status is SequenceStatus.RUNNING and b.status is SequenceStatus.WAITING
    s.finish(a, FinishReason.STOP)
    assert s.block_manager.num_free_blocks == 4
    run_step(s)
    assert b.status is SequenceStatus.RUNNING


def test_newest_row_is_preempted_and_recomputed_when_pages_run_out() -> None:
    s = make(num_blocks=4, block_size=4, budget=32)
    a, b = seq(7, max_tokens=9), seq(7, max_tokens=9, first=50)
    s.add(a)
    s.add(b)
    run_step(s)  # both prefilled: 2 pages each, all pages used
    run_step(s)  # position 7 still fits the second page
    out = s.schedule()  # a needs a third page for position 8
    assert out.preempted == [b]
    assert b.status is SequenceStatus.WAITING and s.waiting[0] is b
    assert b.block_table == [] and b.num_computed_tokens == 0
    assert [item.seq for item in out.scheduled] == [a]
    s.update_from_output(out)
    s.finish(a, FinishReason.STOP)
    rows = run_step(s)
    assert rows == [(b, 5)]  # prompt + 2 outputs = 9 tokens; the first page came from cache


def test_preempting_itself_when_it_is_the_only_candidate() -> None:
    s = make(num_blocks=3, block_size=2, budget=16)
    a, b = seq(3, max_tokens=3), seq(1, max_tokens=3, first=40)
    s.add(a)
    s.add(b)
    run_step(s)  # a: 2 pages, b: 1 page
    run_step(s)  # a at 4 tokens fits 2 pages, b at 2 tokens fits 1 page
    out = s.schedule()  # a needs page 3 -> b preempted; fine
    assert out.preempted == [b]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_random_workloads_never_leak_or_double_book_pages(seed: int) -> None:
    rng = random.Random(seed)
    s = make(
        num_blocks=rng.randint(6, 14),
        block_size=rng.choice([2, 4]),
        seqs=rng.randint(1, 4),
        budget=rng.randint(4, 12),
    )
    pool = [
        seq(rng.randint(1, 9), max_tokens=rng.randint(1, 6), first=rng.choice([0, 0, 30]))
        for _ in range(rng.randint(1, 8))
    ]
    for q in pool:
        if s.block_manager.blocks_needed(len(q) + q.max_tokens) > s.block_manager.num_blocks:
            with pytest.raises(ValueError, match="pages"):
                s.add(q)
        else:
            s.add(q)
    for _ in range(400):
        if not s.has_unfinished():
            break
        run_step(s, token=rng.randint(0, 5))
        for q in list(s.running):
            if q.num_output_tokens >= q.max_tokens or rng.random() < 0.05:
                s.finish(q, FinishReason.STOP)
        _check_pages(s)
    assert not s.has_unfinished()
    assert s.block_manager.num_free_blocks == s.block_manager.num_blocks


def _check_pages(s: Scheduler) -> None:
    bm = s.block_manager
    holders: dict[int, int] = {}
    for q in s.running:
        assert len(q.block_table) * bm.block_size >= q.num_computed_tokens
        for b in q.block_table:
            holders[b] = holders.get(b, 0) + 1
    for q in s.waiting:
        assert q.block_table == []
    for b, count in holders.items():
        assert bm.blocks[b].ref_count == count
        assert count == 1 or bm.blocks[b].hash is not None  # only full, hashed pages are shared
    assert bm.num_used_blocks == len(holders)
