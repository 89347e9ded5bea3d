"""Muon: Newton–Schulz orthogonalisation on known matrices, RMS matching, momentum, AdamW part."""

from __future__ import annotations

import math

import pytest
import torch

from openk2.train.optim.muon import NS_COEFFS, MuonAdamW, muon_scale, newton_schulz5


def _scalar_ns(s: float, steps: int = 5) -> float:
    """The NS polynomial applied to one singular value `steps` times."""
    a, b, c = NS_COEFFS
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return s


def _orthogonal(n: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed)))
    return q


def test_ns_maps_orthogonal_matrix_to_scaled_copy() -> None:
    """All singular values of Q/‖Q‖_F equal 1/√n, so NS5(Q) = φ⁵(1/√n)·Q exactly."""
    q = _orthogonal(16)
    expected = _scalar_ns(1 / math.sqrt(16)) * q
    torch.testing.assert_close(newton_schulz5(q), expected, atol=1e-5, rtol=1e-5)


def test_ns_maps_rank_one_matrix_through_scalar_polynomial() -> None:
    gen = torch.Generator().manual_seed(7)
    u, v = torch.randn(8, generator=gen), torch.randn(12, generator=gen)
    g = 3.0 * torch.outer(u, v)
    direction = torch.outer(u / u.norm(), v / v.norm())
    torch.testing.assert_close(newton_schulz5(g), _scalar_ns(1.0) * direction, atol=3e-5, rtol=1e-4)


def test_ns_keeps_singular_vectors_and_flattens_singular_values() -> None:
    g = torch.randn(32, 96, generator=torch.Generator().manual_seed(1)) @ torch.diag(
        torch.logspace(-2, 1, 96)
    )
    o = newton_schulz5(g)
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    d = u.T @ o @ vh.T
    diag = torch.diagonal(d)
    assert (d - torch.diag(diag)).abs().max() < 1e-3
    assert float(diag.min()) > 0.55
    assert float(diag.max()) < 1.25


def test_ns_handles_tall_and_batched_inputs() -> None:
    g = torch.randn(3, 40, 10, generator=torch.Generator().manual_seed(2))
    batched = newton_schulz5(g)
    for i in range(3):
        torch.testing.assert_close(batched[i], newton_schulz5(g[i]), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(newton_schulz5(g[i]), newton_schulz5(g[i].T).T)


def test_ns_rejects_vectors_and_keeps_zero_finite() -> None:
    with pytest.raises(ValueError, match="matrix"):
        newton_schulz5(torch.randn(5))
    assert torch.equal(newton_schulz5(torch.zeros(4, 6)), torch.zeros(4, 6))


def _muon(p: torch.nn.Parameter, **kw: object) -> MuonAdamW:
    group = {"params": [p], "use_muon": True, "lr": 1.0, "weight_decay": 0.0, **kw}
    return MuonAdamW([group])


@pytest.mark.parametrize("shape", [(16, 16), (8, 32), (32, 8)])
def test_update_rms_matches_point_two(shape: tuple[int, int]) -> None:
    """A semi-orthogonal A×B matrix has RMS 1/√max(A,B); the 0.2·√max factor makes it 0.2."""
    a, b = shape
    q = _orthogonal(max(a, b))[:a, :b].contiguous()
    p = torch.nn.Parameter(torch.zeros(shape))
    p.grad = q.clone()
    _muon(p, momentum=0.0, nesterov=False).step()
    singular = _scalar_ns(1 / math.sqrt(min(a, b)))
    rms = float(p.detach().pow(2).mean().sqrt())
    assert rms == pytest.approx(0.2 * singular, rel=1e-4)
    torch.testing.assert_close(p.detach(), -muon_scale(p.shape) * singular * q, atol=1e-5, rtol=0)


def test_nesterov_momentum_and_weight_decay() -> None:
    torch.manual_seed(3)
    w0 = torch.randn(6, 10)
    grads = [torch.randn(6, 10) for _ in range(2)]
    p = torch.nn.Parameter(w0.clone())
    opt = _muon(p, lr=0.1, weight_decay=0.5, momentum=0.9, nesterov=True)
    w, buf = w0.clone(), torch.zeros(6, 10)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        buf = 0.9 * buf + g
        w = w * (1 - 0.1 * 0.5) - 0.1 * muon_scale(w.shape) * newton_schulz5(g + 0.9 * buf)
    torch.testing.assert_close(p.detach(), w, atol=1e-6, rtol=1e-5)


def test_same_shape_matrices_batched_equal_separate_updates() -> None:
    torch.manual_seed(4)
    ps = [torch.nn.Parameter(torch.randn(8, 12)) for _ in range(3)]
    solo = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    for p, s in zip(ps, solo, strict=True):
        p.grad = torch.randn(8, 12)
        s.grad = p.grad.clone()
    MuonAdamW([{"params": ps, "use_muon": True, "lr": 0.05}]).step()
    for s in solo:
        MuonAdamW([{"params": [s], "use_muon": True, "lr": 0.05}]).step()
    for p, s in zip(ps, solo, strict=True):
        torch.testing.assert_close(p, s, atol=1e-6, rtol=1e-5)


def test_adamw_groups_match_torch_adamw() -> None:
    torch.manual_seed(5)
    ours = torch.nn.Parameter(torch.randn(7))
    ref = torch.nn.Parameter(ours.detach().clone())
    hyper = {"lr": 0.01, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}
    opt = MuonAdamW([{"params": [ours], "use_muon": False, **hyper}])
    ref_opt = torch.optim.AdamW([ref], **hyper)  # type: ignore[arg-type]
    for _ in range(4):
        g = torch.randn(7)
        ours.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(ours, ref, atol=1e-7, rtol=1e-6)


def test_vector_in_muon_group_is_rejected() -> None:
    with pytest.raises(ValueError, match="AdamW group"):
        MuonAdamW([{"params": [torch.nn.Parameter(torch.zeros(4))], "use_muon": True}])


def test_params_without_grad_are_left_alone() -> None:
    p = torch.nn.Parameter(torch.ones(4, 4))
    _muon(p, weight_decay=0.5).step()
    assert torch.equal(p.detach(), torch.ones(4, 4))
