"""Sampling: greedy, temperature, top-k, top-p, per-row knobs and seeded reproducibility."""

from __future__ import annotations

import pytest
import torch

from openk2.model.sampling import sample


def _counts(logits: torch.Tensor, draws: int = 4000, **knobs: object) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    rows = logits.expand(draws, -1)
    picked = sample(rows, generator=generator, **knobs)  # type: ignore[arg-type]
    return torch.bincount(picked, minlength=logits.shape[-1])


def test_temperature_zero_is_argmax() -> None:
    logits = torch.randn(5, 50)
    assert torch.equal(sample(logits), logits.argmax(-1))
    assert torch.equal(sample(logits.bfloat16(), temperature=0.0), logits.bfloat16().argmax(-1))


def test_sampling_follows_softmax_probabilities() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    freq = _counts(logits, temperature=1.0).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.03)
    sharp = _counts(logits, temperature=0.25).float() / 4000
    assert sharp[0] > 0.8


def test_top_k_and_top_p_restrict_the_support() -> None:
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1]]))
    assert _counts(logits, temperature=1.0, top_k=2)[2:].sum() == 0
    top_p = _counts(logits, temperature=1.0, top_p=0.65)
    assert top_p[2:].sum() == 0 and top_p[1] > 0
    assert (_counts(logits, temperature=1.0, top_p=0.05)[1:] == 0).all()


def test_per_row_knobs_mix_greedy_and_sampled_rows() -> None:
    logits = torch.zeros(2, 100)
    logits[:, 7] = 0.5
    temperature = torch.tensor([0.0, 1.0])
    generator = torch.Generator().manual_seed(1)
    picks = torch.stack(
        [sample(logits, temperature=temperature, generator=generator) for _ in range(50)]
    )
    assert (picks[:, 0] == 7).all()
    assert len(set(picks[:, 1].tolist())) > 10


def test_seeded_generator_reproduces() -> None:
    logits = torch.randn(3, 1000)

    def run(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return sample(logits, temperature=1.0, top_p=0.9, top_k=50, generator=generator)

    assert torch.equal(run(5), run(5))
    assert not torch.equal(torch.stack([run(5), run(6), run(7)]), run(5).expand(3, 3))


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": torch.ones(3)}, r"\[2\]"),
    ],
)
def test_bad_knobs_are_rejected(knobs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample(torch.zeros(2, 10), **knobs)  # type: ignore[arg-type]


def test_logits_must_be_two_dimensional() -> None:
    with pytest.raises(ValueError, match=r"\[B, V\]"):
        sample(torch.zeros(10))
