"""The AdamW update for the parameters Muon does not own (embeddings, lm_head, norms, vectors).

Kept as one in-place function so `MuonAdamW` can apply it per parameter and tests can compare it
with `torch.optim.AdamW` directly.
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def adamw_step_(
    p: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
) -> None:
    """Update `p`, `exp_avg` and `exp_avg_sq` in place for optimizer step `step` (1-based).

    Same arithmetic as torch.optim.AdamW (decoupled decay p ← p·(1 − lr·λ), bias-corrected
    moments), so a run that swaps one for the other changes nothing but speed.
    """
    beta1, beta2 = betas
    p.mul_(1.0 - lr * weight_decay)
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    bias1 = 1.0 - beta1**step
    bias2_sqrt = math.sqrt(1.0 - beta2**step)
    denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(eps)
    p.addcdiv_(exp_avg, denom, value=-lr / bias1)
