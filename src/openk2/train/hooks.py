"""The model-facing side of the post-step hooks: find MLA layers and MoE routers, read what they
recorded during the forward pass, and apply QK-Clip and the router-bias update to them.

The model records, when asked (its training flags), per-head max pre-softmax logits in every MLA
module and per-expert token counts in every MoE gate, for its last forward call. `StepRecords`
collects them after each micro-batch, so a step with gradient accumulation sees the max/sum over
all of its micro-batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from openk2.train.optim.load_balance import update_router_bias_
from openk2.train.optim.qk_clip import MLAHeadDims, qk_clip_mla_
from openk2.train.optim.sharded import full_matrix, write_full_

RECORD_LOGITS_FLAG = "record_max_logit"
"""Bool attribute of an MLA module: record per-head max logits during forward."""
MAX_LOGITS_ATTR = "max_logit_H"
"""Attribute of an MLA module: [H] max pre-softmax logit (scale included) of its last forward."""
RECORD_LOAD_FLAG = "record_tokens_per_expert"
"""Bool attribute of an MoE gate: count tokens routed to each expert."""
LOAD_ATTR = "tokens_per_expert"
"""Attribute of an MoE gate: [E] routed-token counts of its last forward."""
BIAS_ATTR = "e_score_correction_bias"
"""The router's selection bias (a buffer) that the load-balancing hook owns."""


@dataclass(kw_only=True, slots=True)
class StepRecords:
    """Forward-pass records of one optimizer step, merged over its micro-batches.

    The model keeps only its last forward's values, so `collect` runs after every micro-batch:
    max logits take the running max, expert loads the running sum.
    """

    max_logit_H: dict[int, torch.Tensor] = field(default_factory=dict)
    """MLA module index (in `mla_modules` order) → running per-head max."""
    load_E: dict[int, torch.Tensor] = field(default_factory=dict)
    """Gate index (in `moe_gates` order) → running per-expert token count."""

    def collect(self, model: nn.Module) -> None:
        for i, mla in enumerate(mla_modules(model)):
            _merge(self.max_logit_H, i, getattr(mla, MAX_LOGITS_ATTR, None), torch.maximum)
            setattr(mla, MAX_LOGITS_ATTR, None)
        for i, gate in enumerate(moe_gates(model)):
            _merge(self.load_E, i, getattr(gate, LOAD_ATTR, None), torch.add)
            setattr(gate, LOAD_ATTR, None)


def _merge(into: dict[int, torch.Tensor], key: int, value: torch.Tensor | None, op: Any) -> None:
    if value is None:
        return
    value = value.detach()
    into[key] = value.clone() if key not in into else op(into[key], value)


@dataclass(kw_only=True, slots=True)
class ClipReport:
    """What QK-Clip saw and did after one step."""

    max_logit: float
    """Largest recorded per-head max logit over all layers (nan if nothing was recorded)."""
    clipped_heads: int
    """Heads rescaled."""


def mla_modules(model: nn.Module) -> list[nn.Module]:
    """Every MLA attention module (identified by its `kv_b_proj` and recording flag)."""
    return [
        m for m in model.modules() if hasattr(m, "kv_b_proj") and hasattr(m, RECORD_LOGITS_FLAG)
    ]


def moe_gates(model: nn.Module) -> list[nn.Module]:
    """Every MoE router gate (identified by its selection bias and recording flag)."""
    return [m for m in model.modules() if hasattr(m, BIAS_ATTR) and hasattr(m, RECORD_LOAD_FLAG)]


def enable_recording(model: nn.Module, *, logits: bool, load: bool) -> None:
    """Switch the forward-pass records QK-Clip and load balancing need on or off.

    Recording logits makes MLA use its eager attention path (SDPA exposes no scores).
    """
    for mla in mla_modules(model):
        setattr(mla, RECORD_LOGITS_FLAG, logits)
    for gate in moe_gates(model):
        setattr(gate, RECORD_LOAD_FLAG, load)


def head_dims(mla: nn.Module) -> MLAHeadDims:
    """The MLA module's head layout."""
    return MLAHeadDims(
        num_heads=int(mla.num_heads),  # type: ignore[arg-type]
        nope_dim=int(mla.nope_dim),  # type: ignore[arg-type]
        rope_dim=int(mla.rope_dim),  # type: ignore[arg-type]
        v_dim=int(mla.v_dim),  # type: ignore[arg-type]
    )


def _q_weight(mla: nn.Module) -> torch.Tensor:
    """q_b_proj.weight, or q_proj.weight when the model has no query LoRA."""
    proj = getattr(mla, "q_b_proj", None)
    if proj is None:
        proj = mla.q_proj
    return proj.weight  # type: ignore[return-value]


def qk_clip(model: nn.Module, records: StepRecords, tau: float | None) -> ClipReport:
    """Apply QK-Clip (if `tau` is set) to every MLA layer from the step's max logits."""
    overall, clipped = -math.inf, 0
    for i, mla in enumerate(mla_modules(model)):
        recorded = records.max_logit_H.get(i)
        if recorded is None:
            continue
        overall = max(overall, float(recorded.max()))
        if tau is not None and float(recorded.max()) > tau:
            clipped += _clip_layer(mla, recorded, tau)
    return ClipReport(max_logit=overall if overall > -math.inf else math.nan, clipped_heads=clipped)


def _clip_layer(mla: nn.Module, recorded: torch.Tensor, tau: float) -> int:
    """QK-Clip one layer on whole matrices (gathered if FSDP shards them); heads clipped."""
    q_weight, kv_b = _q_weight(mla), mla.kv_b_proj.weight  # type: ignore[union-attr]
    q_full, kv_full = full_matrix(q_weight), full_matrix(kv_b)  # type: ignore[arg-type]
    gamma = qk_clip_mla_(q_full, kv_full, recorded, tau=tau, dims=head_dims(mla))
    write_full_(q_weight, q_full)
    write_full_(kv_b, kv_full)  # type: ignore[arg-type]
    return int((gamma < 1.0).sum())


def balance_routers(model: nn.Module, records: StepRecords, rate: float) -> float:
    """Update every router bias from the step's expert loads; return the worst imbalance."""
    worst = math.nan
    for i, gate in enumerate(moe_gates(model)):
        load = records.load_E.get(i)
        if load is None:
            continue
        bias: torch.Tensor = getattr(gate, BIAS_ATTR)
        imbalance = update_router_bias_(bias, load, rate)
        worst = imbalance if math.isnan(worst) else max(worst, imbalance)
    return worst
