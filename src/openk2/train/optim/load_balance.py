"""Aux-loss-free load balancing: nudge each router's selection bias towards even expert load.

K2 (like DeepSeek-V3) adds `e_score_correction_bias` to the sigmoid scores only when choosing the
top-k experts; the mixing weights use the unbiased scores. No gradient reaches the bias. After
each optimizer step the bias of an overloaded expert goes down by a fixed rate and that of an
underloaded one goes up (a sign rule), which evens out the load without an auxiliary loss that
would fight the language-modelling objective.

Shape legend: E routed experts.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def update_router_bias_(
    bias_E: torch.Tensor, tokens_per_expert_E: torch.Tensor, rate: float
) -> float:
    """Apply bias_E += rate · sign(mean load − load_E), re-centred to keep the mean bias fixed.

    Re-centring removes the common drift that a sign rule otherwise accumulates (selection only
    depends on bias differences). Returns the load imbalance max(load)/mean(load) before the
    update (1.0 means perfectly even; 0.0 when no token was routed).
    """
    if bias_E.shape != tokens_per_expert_E.shape:
        raise ValueError(
            f"bias shape {tuple(bias_E.shape)} != load shape {tuple(tokens_per_expert_E.shape)}"
        )
    if rate < 0:
        raise ValueError(f"load-balancing rate must be >= 0, got {rate}")
    load_E = tokens_per_expert_E.detach().to(torch.float32)
    mean = load_E.mean()
    if float(mean) == 0.0:
        return 0.0
    delta_E = rate * torch.sign(mean - load_E)
    delta_E -= delta_E.mean()
    bias_E.add_(delta_E.to(device=bias_E.device, dtype=bias_E.dtype))
    return float(load_E.max() / mean)
