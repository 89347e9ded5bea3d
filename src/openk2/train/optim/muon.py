"""Muon for hidden matrices and AdamW for everything else, in one optimizer (MuonClip's base).

Muon (K2 tech report §2.1; Moonlight) replaces the per-coordinate Adam update of a weight matrix
W ∈ R^{A×B} by the orthogonalised momentum:

    M_t = μ M_{t-1} + G_t;   U = G_t + μ M_t (Nesterov) or M_t
    O_t = NS5(U) · 0.2 · √max(A, B)          # update RMS ≈ 0.2, the RMS of a typical AdamW update
    W_t = W_{t-1} − η (O_t + λ W_{t-1})      # decoupled weight decay

The 0.2·√max(A,B) factor (Moonlight's update-RMS matching) lets Muon reuse AdamW's learning rate
and weight decay. Newton–Schulz (NS5) maps U to ≈ U V Σ^0 Wᵀ (its singular values pushed towards
~[0.7, 1.2]) without an SVD, so it is cheap on accelerators.

One optimizer holds both kinds of group (a group dict with `use_muon=True` or `False`), so
checkpointing, the LR schedule and `zero_grad` see a single object. `param_groups()` in
`groups.py` builds those groups.

Shape legend: A rows, B columns of a matrix; N a batch of same-shape matrices (e.g. experts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from openk2.train.optim.adamw import adamw_step_
from openk2.train.optim.sharded import full_matrix, shard_like

NS_COEFFS = (3.4445, -4.7750, 2.0315)
"""Quintic Newton–Schulz coefficients (a, b, c) used by K2/Moonlight (KellerJordan's tuning)."""

NS_EPS = 1e-7
"""Added to the Frobenius norm before normalising, so an all-zero gradient stays finite."""

RMS_MATCH = 0.2
"""Target update RMS: Muon's orthogonal update is scaled to AdamW's typical RMS (Moonlight)."""


def newton_schulz5(
    g_NAB: torch.Tensor, steps: int = 5, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Approximately orthogonalise each matrix of `g_NAB` (…, A, B) with `steps` NS iterations.

    Works on a single matrix [A, B] or a batch [N, A, B]. The iteration runs on the wide
    orientation (A ≤ B), where X Xᵀ is the smaller Gram matrix. `dtype` defaults to bf16 on
    accelerators (as in K2) and fp32 on CPU, where bf16 matmuls hit a ~1 GFLOP/s fallback
    (performance.md §1.2). Returns a tensor in `g_NAB`'s dtype.
    """
    if g_NAB.ndim < 2:
        raise ValueError(f"newton_schulz5 needs a matrix, got shape {tuple(g_NAB.shape)}")
    if dtype is None:
        dtype = torch.float32 if g_NAB.device.type == "cpu" else torch.bfloat16
    a, b, c = NS_COEFFS
    x = g_NAB.to(dtype)
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + NS_EPS)
    for _ in range(steps):
        p = x @ x.mT
        x = a * x + (b * p + c * (p @ p)) @ x
    if tall:
        x = x.mT
    return x.to(g_NAB.dtype)


def muon_scale(shape: torch.Size) -> float:
    """The update-RMS matching factor 0.2·√max(A, B) for a matrix (or batch) of `shape`."""
    return RMS_MATCH * math.sqrt(max(shape[-2], shape[-1]))


class MuonAdamW(torch.optim.Optimizer):
    """Muon on groups flagged `use_muon=True`, AdamW on the others.

    Muon group keys: lr, weight_decay, momentum (0.95), nesterov (True), ns_steps (5),
    ns_dtype (None = bf16 on accelerators, fp32 on CPU). AdamW group keys: lr, weight_decay,
    betas, eps. Matrices of one shape inside a Muon group are orthogonalised together as one
    batched NS call, which matters for the many small experts of an MoE on CPU.
    """

    def __init__(self, groups: Iterable[dict[str, Any]]) -> None:
        defaults = {
            "lr": 0.02,
            "weight_decay": 0.1,
            "use_muon": False,
            "momentum": 0.95,
            "nesterov": True,
            "ns_steps": 5,
            "ns_dtype": None,
            "betas": (0.9, 0.95),
            "eps": 1e-8,
        }
        super().__init__(list(groups), defaults)
        for group in self.param_groups:
            if group["use_muon"]:
                _check_muon_group(group)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """Apply one update to every group; `closure` re-evaluates the loss as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_group(group)
            else:
                self._adamw_group(group)
        return loss

    def _muon_group(self, group: dict[str, Any]) -> None:
        """Momentum, then one batched NS5 per shape, then the scaled, decayed update.

        FSDP-sharded parameters keep sharded momentum; NS5 runs on the gathered whole matrix
        and each rank applies its own rows of the result (`sharded.py` states the cost).
        """
        by_shape: dict[torch.Size, list[torch.Tensor]] = {}
        for p in group["params"]:
            if p.grad is not None:
                by_shape.setdefault(p.shape, []).append(p)
        for shape, params in by_shape.items():
            updates = [full_matrix(self._muon_momentum(p, group)) for p in params]
            ortho = newton_schulz5(
                torch.stack(updates), steps=group["ns_steps"], dtype=group["ns_dtype"]
            )
            scale = muon_scale(shape)
            for p, o in zip(params, ortho.unbind(0), strict=True):
                p.mul_(1.0 - group["lr"] * group["weight_decay"])
                p.add_(shard_like(o, p), alpha=-group["lr"] * scale)

    def _muon_momentum(self, p: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        """Update p's momentum buffer and return the (Nesterov) direction to orthogonalise."""
        grad = p.grad
        assert grad is not None
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(grad)
        return grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf.clone()

    def _adamw_group(self, group: dict[str, Any]) -> None:
        """Standard AdamW with bias correction and decoupled weight decay."""
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            adamw_step_(
                p,
                p.grad,
                state["exp_avg"],
                state["exp_avg_sq"],
                step=state["step"],
                lr=group["lr"],
                betas=group["betas"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
            )


def _check_muon_group(group: dict[str, Any]) -> None:
    """Reject parameters Muon cannot orthogonalise (vectors) with a message naming the fix."""
    for p in group["params"]:
        if p.ndim < 2:
            raise ValueError(
                f"Muon group holds a {p.ndim}-D parameter of shape {tuple(p.shape)}; "
                "vectors (norms, biases) belong in an AdamW group (use_muon=False)"
            )
    if not 0.0 <= group["momentum"] < 1.0:
        raise ValueError(f"Muon momentum must be in [0, 1), got {group['momentum']}")
