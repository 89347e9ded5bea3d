"""QK-Clip for MLA: cap each head's max pre-softmax logit at τ by rescaling its weights.

After each optimizer step, for every layer and head h whose recorded max logit S_h (including the
softmax scale) exceeds τ, set γ_h = τ / S_h and rescale (K2 report §2.1, Alg. 1):

    q_nope rows of q_b_proj (head h)  ×= √γ_h      k_nope rows of kv_b_proj (head h)  ×= √γ_h
    q_rope rows of q_b_proj (head h)  ×= γ_h       shared rope key (kv_a_proj_with_mqa) untouched

The nope logit q_nope·k_nope scales by √γ·√γ = γ and the rope logit q_rope·k_rope by γ·1 = γ, so
the head's whole logit scales by γ. V rows, q_a/kv_a projections and the forward pass are
unchanged. Heads at or under τ are left bit-for-bit alone.

Row layouts (spec §3): q_b_proj is head-major with [h·(n+r) : h·(n+r)+n] nope and the next r rows
rope; kv_b_proj has [h·(n+v) : h·(n+v)+n] k_nope and the next v rows V.

Shape legend: H heads, n qk_nope_head_dim, r qk_rope_head_dim, v v_head_dim, R a LoRA rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(kw_only=True, slots=True)
class MLAHeadDims:
    """Per-head widths that locate a head's rows inside q_b_proj and kv_b_proj."""

    num_heads: int
    """H, the number of attention heads."""
    nope_dim: int
    """n, qk_nope_head_dim (128 in K2)."""
    rope_dim: int
    """r, qk_rope_head_dim (64 in K2)."""
    v_dim: int
    """v, v_head_dim (128 in K2)."""


def clip_factors(max_logit_H: torch.Tensor, tau: float) -> torch.Tensor:
    """γ_H = min(1, τ / S_H); exactly 1.0 for heads at or under τ (and for non-finite S)."""
    if tau <= 0:
        raise ValueError(f"QK-Clip threshold tau must be positive, got {tau}")
    s = max_logit_H.detach().float()
    over = torch.isfinite(s) & (s > tau)
    return torch.where(over, tau / torch.where(over, s, torch.ones_like(s)), torch.ones_like(s))


@torch.no_grad()
def qk_clip_mla_(
    q_weight: torch.Tensor,
    kv_b_weight: torch.Tensor,
    max_logit_H: torch.Tensor,
    *,
    tau: float,
    dims: MLAHeadDims,
) -> torch.Tensor:
    """Rescale head rows of `q_weight` (q_b_proj or q_proj) and `kv_b_weight` in place.

    Returns γ_H (1.0 where a head was not clipped). Raises ValueError if the weight shapes do
    not match `dims`, which would otherwise rescale the wrong rows silently.
    """
    h, n, r, v = dims.num_heads, dims.nope_dim, dims.rope_dim, dims.v_dim
    _check_rows(q_weight, h * (n + r), "q_b_proj")
    _check_rows(kv_b_weight, h * (n + v), "kv_b_proj")
    if max_logit_H.shape != (h,):
        raise ValueError(f"max_logit_H must have shape ({h},), got {tuple(max_logit_H.shape)}")
    gamma_H = clip_factors(max_logit_H, tau).to(q_weight.device)
    if bool((gamma_H < 1.0).any()):
        sqrt_H = gamma_H.sqrt()
        q_H_n_r = q_weight.view(h, n + r, -1)
        q_H_n_r[:, :n].mul_(sqrt_H.view(h, 1, 1).to(q_weight.dtype))
        q_H_n_r[:, n:].mul_(gamma_H.view(h, 1, 1).to(q_weight.dtype))
        kv_H_n_v = kv_b_weight.view(h, n + v, -1)
        kv_H_n_v[:, :n].mul_(sqrt_H.view(h, 1, 1).to(kv_b_weight.dtype))
    return gamma_H


def _check_rows(weight: torch.Tensor, rows: int, name: str) -> None:
    """Fail loudly when a projection's row count disagrees with the head layout."""
    if weight.ndim != 2 or weight.shape[0] != rows or not weight.is_contiguous():
        raise ValueError(
            f"{name} weight must be a contiguous [{rows}, in] matrix for this head layout, "
            f"got shape {tuple(weight.shape)}"
        )
