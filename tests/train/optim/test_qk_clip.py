"""QK-Clip on plain MLA weights: a forced large logit drops to τ, other heads stay bit-identical."""

from __future__ import annotations

import pytest
import torch

from openk2.train.optim.qk_clip import MLAHeadDims, clip_factors, qk_clip_mla_

DIMS = MLAHeadDims(num_heads=4, nope_dim=6, rope_dim=4, v_dim=5)
SCALE = (DIMS.nope_dim + DIMS.rope_dim) ** -0.5


def _max_logits(
    q_w: torch.Tensor, kv_w: torch.Tensor, c_q: torch.Tensor, c_kv: torch.Tensor, k_pe: torch.Tensor
) -> torch.Tensor:
    """Per-head max over (query, key) of s·(q_nope·k_nope + q_pe·k_pe), as MLA computes it."""
    h, n, r, v = DIMS.num_heads, DIMS.nope_dim, DIMS.rope_dim, DIMS.v_dim
    q = (c_q @ q_w.T).view(-1, h, n + r)
    kv = (c_kv @ kv_w.T).view(-1, h, n + v)
    nope = torch.einsum("thd,shd->hts", q[..., :n], kv[..., :n])
    rope = torch.einsum("thd,sd->hts", q[..., n:], k_pe)
    return ((nope + rope) * SCALE).amax(dim=(1, 2))


def _setup(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    h, n, r, v = DIMS.num_heads, DIMS.nope_dim, DIMS.rope_dim, DIMS.v_dim
    q_w = torch.randn(h * (n + r), 12, generator=g)
    kv_w = torch.randn(h * (n + v), 10, generator=g)
    c_q, c_kv, k_pe = (
        torch.randn(7, 12, generator=g),
        torch.randn(7, 10, generator=g),
        torch.randn(7, r, generator=g),
    )
    return q_w, kv_w, c_q, c_kv, k_pe


def test_forced_large_logit_is_clipped_to_tau_and_other_heads_untouched() -> None:
    q_w, kv_w, c_q, c_kv, k_pe = _setup()
    rows = DIMS.nope_dim + DIMS.rope_dim
    q_w[2 * rows : 3 * rows] *= 40.0  # head 2 gets a huge logit
    before = _max_logits(q_w, kv_w, c_q, c_kv, k_pe)
    tau = float(before[[0, 1, 3]].max()) + 1.0
    assert before[2] > 5 * tau
    q0 = q_w.clone()

    gamma = qk_clip_mla_(q_w, kv_w, before, tau=tau, dims=DIMS)

    after = _max_logits(q_w, kv_w, c_q, c_kv, k_pe)
    assert after[2] == pytest.approx(tau, rel=1e-5)
    assert gamma[2] == pytest.approx(tau / float(before[2]))
    for head in (0, 1, 3):
        assert gamma[head] == 1.0
        block = slice(head * rows, (head + 1) * rows)
        assert torch.equal(q_w[block], q0[block])
        assert after[head] == before[head]


def test_row_scaling_pattern_nope_sqrt_gamma_rope_gamma_v_untouched() -> None:
    q_w, kv_w, *_ = _setup(1)
    q0, kv0 = q_w.clone(), kv_w.clone()
    n, r, v = DIMS.nope_dim, DIMS.rope_dim, DIMS.v_dim
    s = torch.tensor([1.0, 400.0, 50.0, 100.0])
    qk_clip_mla_(q_w, kv_w, s, tau=100.0, dims=DIMS)
    h1q, h1kv = slice(1 * (n + r), 2 * (n + r)), slice(1 * (n + v), 2 * (n + v))
    torch.testing.assert_close(q_w[h1q][:n], q0[h1q][:n] * 0.5)  # √(100/400)
    torch.testing.assert_close(q_w[h1q][n:], q0[h1q][n:] * 0.25)
    torch.testing.assert_close(kv_w[h1kv][:n], kv0[h1kv][:n] * 0.5)
    assert torch.equal(kv_w[h1kv][n:], kv0[h1kv][n:])  # V rows
    mask = torch.ones(q_w.shape[0], dtype=torch.bool)
    mask[h1q] = False
    assert torch.equal(q_w[mask], q0[mask])  # head at exactly τ and heads below: untouched


def test_clip_factors_ignore_nonfinite_and_reject_bad_tau() -> None:
    gamma = clip_factors(torch.tensor([float("nan"), float("-inf"), 200.0]), 100.0)
    assert gamma.tolist() == [1.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="positive"):
        clip_factors(torch.ones(2), 0.0)


def test_shape_mismatch_is_a_clear_error() -> None:
    q_w, kv_w, *_ = _setup()
    with pytest.raises(ValueError, match="q_b_proj"):
        qk_clip_mla_(q_w[:-1], kv_w, torch.ones(4), tau=1.0, dims=DIMS)
    with pytest.raises(ValueError, match="max_logit_H"):
        qk_clip_mla_(q_w, kv_w, torch.ones(3), tau=1.0, dims=DIMS)
