"""Mixture of experts: DeepSeek-V3 sigmoid router, bias-corrected top-k, routed + shared experts.

Shape legend: N tokens (batch and time flattened), D hidden, E routed experts, K experts per
token, G expert groups.

Router (fp32, fp64 for fp64 inputs): scores = sigmoid(x W^T); experts are *selected* by top-k of
scores + e_score_correction_bias (restricted to the best `topk_group` groups when n_group > 1), but
*weighted* by the unbiased scores, renormalised when norm_topk_prob, times
routed_scaling_factor. The bias is a fp32 buffer: it is in the state dict, never in
`parameters()`, so no optimizer touches it (training updates it with a load-balancing hook).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.config import ModelConfig
from openk2.model.layers.decode_tables import DecodeFormat, DerivedTable, swiglu_weights
from openk2.model.layers.expert_tables import ExpertTables
from openk2.model.layers.mlp import MLP, swiglu

_NORM_EPS = 1e-20
"""Added to the selected scores' sum before renormalising (as the reference does)."""


class MoEGate(nn.Module):
    """Top-k router; `record_tokens_per_expert` keeps the last call's per-expert token counts."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.n_group = config.n_group
        self.topk_group = config.topk_group
        self.norm_topk_prob = config.norm_topk_prob
        self.routed_scaling_factor = config.routed_scaling_factor
        self.weight = nn.Parameter(torch.empty(config.n_routed_experts, config.hidden_size))
        self.register_buffer(
            "e_score_correction_bias", torch.empty(config.n_routed_experts, dtype=torch.float32)
        )
        self.record_tokens_per_expert = False
        self.tokens_per_expert: torch.Tensor | None = None
        self._weight32 = DerivedTable()

    def forward(self, x_ND: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights_NK fp32 (fp64 for fp64 inputs), expert ids_NK int64) of each token."""
        scores_NE, ids_NK = self._select(x_ND)
        weights_NK = scores_NE.gather(1, ids_NK)
        if self.norm_topk_prob:
            weights_NK = weights_NK / (weights_NK.sum(dim=-1, keepdim=True) + _NORM_EPS)
        return weights_NK * self.routed_scaling_factor, ids_NK

    def route_one(self, x_1D: torch.Tensor) -> list[tuple[float, int]]:
        """(weight, expert id) pairs for a single token; the weighting runs on Python floats.

        Same rule as `forward`, with fewer tensor ops: the decode hot path.
        """
        scores_1E, ids_1K = self._select(x_1D)
        weights = scores_1E.gather(1, ids_1K)[0].tolist()
        scale = self.routed_scaling_factor
        if self.norm_topk_prob:
            scale /= sum(weights) + _NORM_EPS
        return [(w * scale, e) for w, e in zip(weights, ids_1K[0].tolist(), strict=True)]

    def _select(self, x_ND: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sigmoid scores_NE, chosen ids_NK) using the bias for selection only.

        Scores are fp32 for fp32/bf16 inputs (as HF) and fp64 for fp64 ones: an fp32 router's
        GEMM rounds differently for different row counts, so fp64 checks of chunked prefill
        against one-shot would otherwise see ~1e-7 differences in the routing weights.
        """
        work = torch.promote_types(x_ND.dtype, torch.float32)
        weight = self.weight if self.weight.dtype == work else self._fp32_weight().to(work)
        scores_NE = F.linear(x_ND.to(work), weight).sigmoid()
        choice_NE = scores_NE + self.e_score_correction_bias
        if self.n_group > 1:
            choice_NE = self._restrict_to_top_groups(choice_NE)
        ids_NK = choice_NE.topk(self.top_k, dim=-1, sorted=False).indices
        if self.record_tokens_per_expert:
            experts = self.weight.shape[0]
            self.tokens_per_expert = torch.bincount(ids_NK.flatten(), minlength=experts)
        return scores_NE, ids_NK

    def _fp32_weight(self) -> torch.Tensor:
        """The router weight in fp32; without autograd a cached copy of a reduced-precision one
        (rebuilt when it changes), so decode does not convert it at every token."""
        weight = self.weight
        if weight.dtype == torch.float32 or torch.is_grad_enabled():
            return weight.float()
        return self._weight32.get([weight], lambda: weight.detach().float())

    def _restrict_to_top_groups(self, choice_NE: torch.Tensor) -> torch.Tensor:
        """-inf outside the `topk_group` groups with the largest sum of their top-2 scores."""
        n = choice_NE.shape[0]
        grouped_NGe = choice_NE.view(n, self.n_group, -1)
        group_score_NG = grouped_NGe.topk(2, dim=-1).values.sum(dim=-1)
        top_groups_NG = group_score_NG.topk(self.topk_group, dim=-1, sorted=False).indices
        keep_NG = torch.zeros_like(group_score_NG, dtype=torch.bool)
        keep_NG.scatter_(1, top_groups_NG, True)
        masked = grouped_NGe.masked_fill(~keep_NG.unsqueeze(-1), float("-inf"))
        return masked.view(n, -1)

    def init_weights(self, std: float, generator: torch.Generator | None = None) -> None:
        """weight ~ N(0, std); e_score_correction_bias = 0."""
        nn.init.normal_(self.weight, std=std, generator=generator)
        nn.init.zeros_(self.e_score_correction_bias)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> MoEGate:
        """Move like any module, but keep the correction bias fp32 through dtype casts."""
        bias = self.e_score_correction_bias
        super()._apply(fn, recurse)
        moved = self.e_score_correction_bias
        if moved.dtype != torch.float32:
            if bias.is_meta or moved.is_meta:
                kept = torch.empty(bias.shape, dtype=torch.float32, device=moved.device)
            else:
                kept = bias.to(device=moved.device, dtype=torch.float32)
            self.e_score_correction_bias = kept
        return self


class MoE(nn.Module):
    """Routed experts (`experts.{e}`) plus always-on `shared_experts`, HF checkpoint names."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden, width = config.hidden_size, config.moe_intermediate_size
        self.gate = MoEGate(config)
        self.experts = nn.ModuleList(MLP(hidden, width) for _ in range(config.n_routed_experts))
        self.shared_experts = (
            MLP(hidden, width * config.n_shared_experts) if config.n_shared_experts else None
        )
        self._tables = ExpertTables(config.n_routed_experts, config.n_shared_experts)
        self.decode_format: DecodeFormat = "native"

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x_ND = x_BTD.reshape(-1, x_BTD.shape[-1])
        if x_ND.shape[0] == 1 and not torch.is_grad_enabled():
            return self._single_token(x_ND).view_as(x_BTD)
        weights_NK, ids_NK = self.gate(x_ND)
        out_ND = self._routed_grouped(x_ND, weights_NK, ids_NK)
        if self.shared_experts is not None:
            out_ND = out_ND + self.shared_experts(x_ND)
        return out_ND.view_as(x_BTD)

    def _single_token(self, x_1D: torch.Tensor) -> torch.Tensor:
        """Decode path: only the K selected experts run, through the expert tables when every
        module involved is a plain linear (else as modules, so hooks such as LoRA apply)."""
        routes = self.gate.route_one(x_1D)
        ids = [expert_id for _, expert_id in routes]
        weights = self._plain_weights(ids)
        if weights is not None:
            self._tables.refresh(weights, ids, self.decode_format)
            return self._tables.experts_forward(x_1D, ids, [weight for weight, _ in routes])
        shared = self.shared_experts
        out_1D = torch.zeros_like(x_1D) if shared is None else shared(x_1D)
        for weight, expert_id in routes:
            out_1D.add_(self.experts[expert_id](x_1D), alpha=weight)
        return out_1D

    def _plain_weights(self, ids: list[int]) -> list[tuple[torch.Tensor, ...]] | None:
        """SwiGLU weights of the chosen experts, then of the shared expert, when every one of
        them may be read directly (see `decode_tables.plain_weight`); else None."""
        experts = self.experts._modules
        mlps = [experts[str(i)] for i in ids]
        if self.shared_experts is not None:
            mlps.append(self.shared_experts)
        found = []
        for mlp in mlps:
            weights = swiglu_weights(mlp) if type(mlp) is MLP else None
            if weights is None:
                return None
            found.append(weights)
        return found

    def _routed_grouped(
        self, x_ND: torch.Tensor, weights_NK: torch.Tensor, ids_NK: torch.Tensor
    ) -> torch.Tensor:
        """Batch path: sort the N*K assignments by expert and run each used expert once."""
        top_k = ids_NK.shape[1]
        flat_ids = ids_NK.flatten()
        order = flat_ids.argsort(stable=True)
        counts = torch.bincount(flat_ids, minlength=len(self.experts)).tolist()
        token_of = order // top_k
        inputs = x_ND[token_of]
        spans, start = [], 0
        for expert_id, count in enumerate(counts):
            if count:
                spans.append((self.experts[expert_id], start, start + count))
                start += count
        if self.experts[0].packed_gemms and not torch.is_grad_enabled():
            outputs = _run_experts_fused(inputs, spans)
        else:
            outputs = torch.cat([expert(inputs[a:b]) for expert, a, b in spans])
        scale = weights_NK.flatten()[order].unsqueeze(-1)
        # fp32 at least (bf16 experts), fp64 kept: chunked prefill is checked against one-shot
        work = torch.promote_types(outputs.dtype, torch.float32)
        weighted = (outputs.to(work) * scale).to(x_ND.dtype)
        return torch.zeros_like(x_ND).index_add_(0, token_of, weighted)


def _run_experts_fused(inputs: torch.Tensor, spans: list[tuple[MLP, int, int]]) -> torch.Tensor:
    """Each expert on its rows [a, b) of the sorted inputs, with one SwiGLU for all of them.

    Inference with packed GEMMs: per expert only its two GEMMs run (as modules where hooked,
    see `MLP.gate_up`); the activation between them is one op pair over every row instead of
    a few small ops per expert.
    """
    hidden = swiglu(torch.cat([expert.gate_up(inputs[a:b]) for expert, a, b in spans]))
    return torch.cat([expert.down(hidden[a:b]) for expert, a, b in spans])
