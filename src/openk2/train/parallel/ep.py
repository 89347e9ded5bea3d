"""Expert parallelism: each rank keeps 1/ep of every MoE layer's routed experts, and tokens
travel to their experts' owners and back with two all-to-alls per layer.

`shard_experts` rewrites a built model in place: `mlp.experts` becomes a ModuleDict of this
rank's experts under their global ids (so parameter names stay the HF checkpoint names, and DCP
saves each expert once, from its owner), and the MoE's forward becomes `_ep_forward`. The
router (replicated, FSDP-sharded with the rest of the layer) and the shared expert run locally.

Rank r owns experts [r·E/ep, (r+1)·E/ep). The forward, per layer (M the rows a rank receives):
1. route the local tokens; sort the N·K (token, expert) assignments by expert id, so the rows
   bound for each owner are contiguous and already in expert order;
2. exchange the per-owner counts, then the rows (autograd all-to-all) and their expert ids;
3. run each local expert on its received rows (every expert sees the same rows in the same
   order as in one process: the global batch is split contiguously across ranks);
4. send the outputs back with the reverse all-to-all, weight them and sum per token.

The backward of each all-to-all is the reverse all-to-all, so an expert's gradient already
sums over every rank's tokens: expert weights need no further gradient reduction.

Shape legend: N local tokens, D hidden, K experts per token, M received rows, W world.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed._functional_collectives import all_to_all_single_autograd

from openk2.model.layers.moe import MoE
from openk2.train.parallel.dims import ParallelDims

_SHARD_ATTR = "_expert_shard"


@dataclass(kw_only=True, slots=True, frozen=True)
class ExpertShard:
    """The slice of one MoE layer's experts that this rank owns."""

    first: int
    """Global id of this rank's first expert."""
    per_rank: int
    """Experts per rank (E / ep)."""
    world: int
    """Ranks exchanging tokens."""
    group: dist.ProcessGroup
    """The expert-parallel process group."""


def shard_experts(model: nn.Module, dims: ParallelDims) -> list[str]:
    """Keep only this rank's routed experts in every MoE layer; return the rewritten MoE
    modules' names. A no-op when `dims.ep == 1`."""
    if dims.ep == 1:
        return []
    group = dist.new_group(list(range(dims.world)))
    rewritten = []
    for name, moe in model.named_modules():
        if isinstance(moe, MoE):
            _shard_layer(moe, dims, group)
            rewritten.append(name)
    return rewritten


def _shard_layer(moe: MoE, dims: ParallelDims, group: dist.ProcessGroup) -> None:
    total = len(moe.experts)
    if total % dims.ep:
        raise ValueError(f"{total} routed experts do not split evenly over ep={dims.ep} ranks")
    per_rank = total // dims.ep
    first = dims.rank * per_rank
    local = {str(e): moe.experts[e] for e in range(first, first + per_rank)}
    moe.experts = nn.ModuleDict(local)  # type: ignore[assignment]
    shard = ExpertShard(first=first, per_rank=per_rank, world=dims.ep, group=group)
    setattr(moe, _SHARD_ATTR, shard)
    moe.forward = types.MethodType(_ep_forward, moe)  # type: ignore[method-assign]


def local_expert_params(model: nn.Module) -> set[nn.Parameter]:
    """Parameters of the experts this rank owns (FSDP must leave them alone)."""
    return {
        p
        for m in model.modules()
        if hasattr(m, _SHARD_ATTR)
        for p in m.experts.parameters()  # type: ignore[union-attr]
    }


def _ep_forward(self: MoE, x_BTD: torch.Tensor) -> torch.Tensor:
    """The MoE forward with routed experts spread over ranks (steps 1-4 of the docstring)."""
    x_ND = x_BTD.reshape(-1, x_BTD.shape[-1])
    weights_NK, ids_NK = self.gate(x_ND)
    out_ND = _dispatch_combine(self, x_ND, weights_NK, ids_NK)
    if self.shared_experts is not None:
        out_ND = out_ND + self.shared_experts(x_ND)
    return out_ND.view_as(x_BTD)


def _dispatch_combine(
    moe: MoE, x_ND: torch.Tensor, weights_NK: torch.Tensor, ids_NK: torch.Tensor
) -> torch.Tensor:
    shard: ExpertShard = getattr(moe, _SHARD_ATTR)
    flat = ids_NK.flatten()
    order = flat.argsort(stable=True)
    token_of = order // ids_NK.shape[1]
    send_ids = flat[order]
    send = torch.bincount(send_ids // shard.per_rank, minlength=shard.world)
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=shard.group)
    send_sizes, recv_sizes = send.tolist(), recv.tolist()
    recv_ids = torch.empty(sum(recv_sizes), dtype=send_ids.dtype)
    dist.all_to_all_single(recv_ids, send_ids, recv_sizes, send_sizes, group=shard.group)
    recv_x = all_to_all_single_autograd(x_ND[token_of], recv_sizes, send_sizes, shard.group)
    local_out = _run_local_experts(moe, shard, recv_x, recv_ids)
    back = all_to_all_single_autograd(local_out, send_sizes, recv_sizes, shard.group)
    scale = weights_NK.flatten()[order].unsqueeze(-1)
    weighted = (back.float() * scale).to(x_ND.dtype)
    return torch.zeros_like(x_ND).index_add_(0, token_of, weighted)


def _run_local_experts(
    moe: MoE, shard: ExpertShard, x_MD: torch.Tensor, ids_M: torch.Tensor
) -> torch.Tensor:
    """Each local expert on its received rows, outputs back in the received order.

    With no rows at all the output is still built from `x_MD`, so the backward reaches the
    dispatching all-to-all on every rank (a rank skipping it would hang the others).
    """
    order = ids_M.argsort(stable=True)
    counts = torch.bincount(ids_M - shard.first, minlength=shard.per_rank).tolist()
    sorted_x = x_MD[order]
    pieces, start = [], 0
    for i, count in enumerate(counts):
        if count:
            expert = moe.experts[str(shard.first + i)]  # type: ignore[index]
            pieces.append(expert(sorted_x[start : start + count]))
            start += count
    out_sorted = torch.cat(pieces) if pieces else sorted_x * 0.0
    return out_sorted[order.argsort()]
