"""Token selection: filters, seeds, bans, guides and logprobs."""

import pytest
import torch

from openk2.engine.sampler import SampleRow, apply_min_p, apply_top_k, sample
from openk2.engine.sampling_params import SamplingParamError, SamplingParams
from openk2.engine.sequence import Sequence
from openk2.engine.top_p import apply_top_p


def row(seed: int | None = None, index: int = 0, **kw: object) -> SampleRow:
    return SampleRow(Sequence("r", index, [1], SamplingParams(seed=seed, **kw), max_tokens=4))


def test_greedy_takes_argmax_and_bans_apply() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 1.0]])
    rows = [row(temperature=0.0), row(temperature=0.0)]
    rows[1].banned = frozenset({0})
    assert [t.token_id for t in sample(logits, rows)] == [1, 2]


def test_top_k_and_top_p_filters() -> None:
    scores = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert torch.isinf(apply_top_k(scores, torch.tensor([2]))).tolist() == [
        [True, False, False, True]
    ]
    assert not torch.isinf(apply_top_k(scores, torch.tensor([0]))).any()
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = ~torch.isinf(apply_top_p(probs, torch.tensor([0.75])))
    assert kept.tolist() == [[True, True, False, False]]
    kept = ~torch.isinf(apply_top_p(probs, torch.tensor([0.01])))
    assert kept.tolist() == [[True, False, False, False]]


def test_seeded_rows_repeat_regardless_of_batch_neighbours() -> None:
    logits = torch.randn(1, 50)
    alone = [sample(logits, [r])[0].token_id for r in [row(seed=7)] for _ in range(1)]
    r = row(seed=7)
    first = [sample(logits, [r])[0].token_id for _ in range(20)]
    r2, other = row(seed=7), row(seed=None)
    batched = [sample(torch.cat([logits, logits]), [other, r2])[1].token_id for _ in range(20)]
    assert first == batched and first[0] == alone[0]
    assert len(set(first)) > 1  # it really samples


def test_different_choice_indices_get_different_streams() -> None:
    logits = torch.zeros(1, 1000)
    a = [sample(logits, [row(seed=3, index=0)])[0].token_id for _ in range(1)]
    b = [sample(logits, [row(seed=3, index=1)])[0].token_id for _ in range(1)]
    assert a != b


def test_sampling_follows_the_distribution() -> None:
    probs = torch.tensor([0.6, 0.3, 0.1])
    r = row(seed=1)
    counts = torch.zeros(3)
    for _ in range(3000):
        counts[sample(probs.log()[None], [r])[0].token_id] += 1
    assert torch.allclose(counts / 3000, probs, atol=0.03)


def test_temperature_sharpens() -> None:
    logits = torch.tensor([[1.0, 0.0]])
    r = row(seed=2, temperature=0.1)
    picks = [sample(logits, [r])[0].token_id for _ in range(200)]
    assert picks.count(0) > 195


def test_logprobs_are_raw_log_softmax_with_top_alternatives() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    out = sample(logits, [row(temperature=0.0, logprobs=2)])[0]
    ref = logits.log_softmax(-1)[0]
    assert out.token_id == 0
    assert out.logprob == pytest.approx(float(ref[0]))
    assert [t for t, _ in out.top] == [0, 1]
    assert out.top[1][1] == pytest.approx(float(ref[1]))


class OnlyOdd:
    """A guide that allows odd token ids only."""

    def fill_bitmask(self, bitmask_W: torch.Tensor) -> None:
        bitmask_W.fill_(int.from_bytes(bytes([0xAA] * 4), "little", signed=True))

    def advance(self, token_id: int) -> None:
        pass


class OnlyStop:
    """A guide that allows token 0 only (a finished grammar waiting for its stop token)."""

    def fill_bitmask(self, bitmask_W: torch.Tensor) -> None:
        bitmask_W.zero_()
        bitmask_W[0] = 1

    def advance(self, token_id: int) -> None:
        pass


def test_guided_rows_sample_within_the_allowed_tokens() -> None:
    logits = torch.tensor([[0.0, 1.0, 9.0, 3.0, 8.0]])
    seq = Sequence("r", 0, [1], SamplingParams(temperature=0.0), max_tokens=4)
    seq.guide = OnlyOdd()
    assert sample(logits, [SampleRow(seq)])[0].token_id == 3
    seq_top1 = Sequence("r", 0, [1], SamplingParams(temperature=1.0, top_k=1, seed=0), 4)
    seq_top1.guide = OnlyOdd()
    assert sample(logits, [SampleRow(seq_top1)])[0].token_id == 3  # top-k within the mask
    draws = set()
    for seed in range(40):
        free = Sequence("r", 0, [1], SamplingParams(temperature=5.0, seed=seed), 4)
        free.guide = OnlyOdd()
        draws.add(sample(logits, [SampleRow(free)])[0].token_id)
    assert draws == {1, 3}


def test_a_guide_beats_a_ban_that_leaves_nothing() -> None:
    logits = torch.tensor([[0.0, 1.0, 9.0]])
    seq = Sequence("r", 0, [1], SamplingParams(temperature=0.0), max_tokens=4)
    seq.guide = OnlyStop()
    assert sample(logits, [SampleRow(seq, banned=frozenset({0}))])[0].token_id == 0


def test_guided_and_free_rows_share_a_batch() -> None:
    logits = torch.tensor([[0.0, 1.0, 9.0, 3.0], [0.0, 1.0, 9.0, 3.0]])
    guided = Sequence("r", 0, [1], SamplingParams(temperature=0.0), max_tokens=4)
    guided.guide = OnlyOdd()
    free = Sequence("r", 1, [1], SamplingParams(temperature=0.0), max_tokens=4)
    assert [t.token_id for t in sample(logits, [SampleRow(guided), SampleRow(free)])] == [3, 2]


def test_invalid_params_are_rejected_with_the_field_name() -> None:
    for bad, word in [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"logprobs": 50}, "top_logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"top_k": 2**70}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"logit_bias": {-1: 1.0}}, "logit_bias"),
    ]:
        with pytest.raises(SamplingParamError, match=word) as exc:
            SamplingParams(**bad)
        assert exc.value.param == (word if word != "top_logprobs" else "logprobs")


def test_tiny_temperatures_are_greedy_not_nan() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0]])
    assert sample(logits, [row(temperature=1e-30, seed=1)])[0].token_id == 1


def test_min_p_keeps_tokens_near_the_best() -> None:
    scores = torch.tensor([[0.0, 2.0, 1.9, -3.0]])
    kept = ~torch.isinf(apply_min_p(scores, torch.tensor([0.5])))
    assert kept.tolist() == [[False, True, True, False]]  # e^-2 and e^-5 are under half the best
    assert not torch.isinf(apply_min_p(scores, torch.tensor([0.0]))).any()
    draws = {sample(scores, [row(seed=s, min_p=0.5)])[0].token_id for s in range(30)}
    assert draws == {1, 2}


def test_repetition_penalty_covers_prompt_and_output() -> None:
    logits = torch.tensor([[2.0, 1.5, -1.0, -1.2]])
    r = row(temperature=0.0, repetition_penalty=2.0)  # prompt [1]: 1.5 -> 0.75
    assert sample(logits, [r])[0].token_id == 0
    r.seq.append_token(0)  # 2.0 -> 1.0, now above 0.75
    assert sample(logits, [r])[0].token_id == 0
    r.seq.append_token(1)
    assert sample(torch.tensor([[0.7, 1.0, -1.0, -1.2]]), [r])[0].token_id == 1  # 0.35 vs 0.5
    neg = row(temperature=0.0, repetition_penalty=2.0)
    neg.seq.token_ids = [2]
    assert sample(torch.tensor([[-5.0, -5.0, -1.0, -1.2]]), [neg])[0].token_id == 3  # -2 < -1.2


def test_logit_bias_and_penalties_shift_the_choice() -> None:
    logits = torch.tensor([[1.0, 0.5, 0.0]])
    assert sample(logits, [row(temperature=0.0, logit_bias={2: 5.0})])[0].token_id == 2
    r = row(temperature=0.0, presence_penalty=0.8)
    r.seq.append_token(0)
    assert sample(logits, [r])[0].token_id == 1  # 1.0 - 0.8 < 0.5
    f = row(temperature=0.0, frequency_penalty=0.4)
    f.seq.append_token(0)
    assert sample(logits, [f])[0].token_id == 0  # one occurrence: 0.6 > 0.5
    f.seq.append_token(0)
    assert sample(logits, [f])[0].token_id == 1  # two: 0.2 < 0.5


def test_top_p_fast_path_matches_the_full_sort() -> None:
    gen = torch.Generator().manual_seed(0)
    peaky = torch.randn(6, 3000, generator=gen) * 6  # nucleus inside the first candidates
    flat = torch.randn(6, 3000, generator=gen) * 0.1  # nucleus spans most of the vocabulary
    scores = torch.cat([peaky, flat])
    p = torch.tensor([0.5, 0.9, 0.95, 0.99, 1e-4, 0.7] * 2)
    fast = torch.isinf(apply_top_p(scores, p))
    full = torch.isinf(apply_top_p(scores, p, first_k=3000))
    sorted_only = torch.isinf(apply_top_p(scores, p, last_k=1))  # wide rows fall back to a sort
    assert torch.equal(fast, full)
    assert (fast != sorted_only).sum(dim=1).max() <= 1  # at most a rounding tie at the edge
    kept = (~fast).sum(dim=1)
    assert kept[:6].max() < 128 < kept[6:][p[6:] > 0.01].min()
