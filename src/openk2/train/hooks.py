"""The model-facing side of the post-step hooks: find MLA layers and MoE routers, read what they
recorded during the forward pass, and apply QK-Clip and the router-bias update to them.

The model records, when asked (its training flags), per-head max pre-softmax logits in every MLA
module and per-expert token counts in every MoE gate. Recording is switched on by
`enable_recording` and the records are cleared at the start of every optimizer step, so a step
with gradient accumulation sees the max/sum over all its micro-batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from openk2.train.optim.load_balance import update_router_bias_
from openk2.train.optim.qk_clip import MLAHeadDims, qk_clip_mla_

RECORD_LOGITS_FLAG = "record_max_logits"
"""Bool attribute of an MLA module: record per-head max logits during forward."""
MAX_LOGITS_ATTR = "max_logit_H"
"""Attribute of an MLA module: [H] max pre-softmax logit (scale included) since the last reset."""
RECORD_LOAD_FLAG = "record_expert_load"
"""Bool attribute of an MoE gate: count tokens routed to each expert."""
LOAD_ATTR = "tokens_per_expert_E"
"""Attribute of an MoE gate: [E] routed-token counts since the last reset."""
BIAS_ATTR = "e_score_correction_bias"
"""The router's selection bias that the load-balancing hook owns."""


@dataclass(kw_only=True, slots=True)
class ClipReport:
    """What QK-Clip saw and did after one step."""

    max_logit: float
    """Largest recorded per-head max logit over all layers (nan if nothing was recorded)."""
    clipped_heads: int
    """Heads rescaled."""


def mla_modules(model: nn.Module) -> list[nn.Module]:
    """Every MLA attention module (identified by its `kv_b_proj`)."""
    return [m for m in model.modules() if hasattr(m, "kv_b_proj") and hasattr(m, RECORD_LOGITS_FLAG)]


def moe_gates(model: nn.Module) -> list[nn.Module]:
    """Every MoE router gate (identified by its selection bias)."""
    return [m for m in model.modules() if hasattr(m, BIAS_ATTR) and hasattr(m, RECORD_LOAD_FLAG)]


def enable_recording(model: nn.Module, *, logits: bool, load: bool) -> None:
    """Switch the forward-pass records QK-Clip and load balancing need on or off."""
    for mla in mla_modules(model):
        setattr(mla, RECORD_LOGITS_FLAG, logits)
    for gate in moe_gates(model):
        setattr(gate, RECORD_LOAD_FLAG, load)


def reset_records(model: nn.Module) -> None:
    """Forget records from previous steps."""
    for mla in mla_modules(model):
        setattr(mla, MAX_LOGITS_ATTR, None)
    for gate in moe_gates(model):
        setattr(gate, LOAD_ATTR, None)


def head_dims(mla: nn.Module) -> MLAHeadDims:
    """The MLA module's head layout."""
    return MLAHeadDims(
        num_heads=int(mla.num_heads),  # type: ignore[arg-type]
        nope_dim=int(mla.qk_nope_head_dim),  # type: ignore[arg-type]
        rope_dim=int(mla.qk_rope_head_dim),  # type: ignore[arg-type]
        v_dim=int(mla.v_head_dim),  # type: ignore[arg-type]
    )


def _q_weight(mla: nn.Module) -> torch.Tensor:
    """q_b_proj.weight, or q_proj.weight when the model has no query LoRA."""
    proj = getattr(mla, "q_b_proj", None)
    if proj is None:
        proj = mla.q_proj
    return proj.weight  # type: ignore[return-value]


def qk_clip(model: nn.Module, tau: float | None) -> ClipReport:
    """Apply QK-Clip (if `tau` is set) to every MLA layer from its recorded max logits."""
    overall, clipped = -math.inf, 0
    for mla in mla_modules(model):
        recorded = getattr(mla, MAX_LOGITS_ATTR, None)
        if recorded is None:
            continue
        overall = max(overall, float(recorded.max()))
        if tau is not None:
            kv_b: torch.Tensor = mla.kv_b_proj.weight  # type: ignore[assignment]
            gamma = qk_clip_mla_(_q_weight(mla), kv_b, recorded, tau=tau, dims=head_dims(mla))
            clipped += int((gamma < 1.0).sum())
    return ClipReport(max_logit=overall if overall > -math.inf else math.nan, clipped_heads=clipped)


def balance_routers(model: nn.Module, rate: float) -> float:
    """Update every router bias from its recorded load; return the worst imbalance (nan if none)."""
    worst = math.nan
    for gate in moe_gates(model):
        load = getattr(gate, LOAD_ATTR, None)
        if load is None:
            continue
        bias: torch.Tensor = getattr(gate, BIAS_ATTR)
        imbalance = update_router_bias_(bias, load, rate)
        worst = imbalance if math.isnan(worst) else max(worst, imbalance)
    return worst
