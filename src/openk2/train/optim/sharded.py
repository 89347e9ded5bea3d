"""Whole matrices out of FSDP-sharded parameters, and back: what Muon and QK-Clip need.

Under FSDP2 a parameter (and its gradient and optimizer state) is a DTensor holding one row
block per rank. Elementwise updates (AdamW, momentum, weight decay) run on the shards as they
are, but Newton–Schulz orthogonalises a *whole* matrix and QK-Clip rescales whole heads, so
those gather the matrix (`full_matrix`: an all-gather), compute on it identically on every rank,
and keep their own rows (`shard_like`: a local slice, no communication).

Cost per Muon matrix A×B per step on W ranks: an all-gather moving (W-1)/W·A·B values into each
rank, and NS5 on the full matrix on every rank (~5·(2·A²·B + 2·A³) flops for A ≤ B, W times the
work of one process in total). Plain tensors pass through untouched, so single-process
training pays nothing.
"""

from __future__ import annotations

import torch
from torch.distributed.tensor import DTensor, distribute_tensor


def local_part(t: torch.Tensor) -> torch.Tensor:
    """This rank's own values of `t` (its shard when `t` is a DTensor), for norms."""
    return t.to_local() if isinstance(t, DTensor) else t


@torch.no_grad()
def full_matrix(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor as a plain tensor (all-gathered when `t` is a DTensor), free to be
    modified in place (no autograd view of the parameter)."""
    return t.full_tensor() if isinstance(t, DTensor) else t


def shard_like(full: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """`full` laid out like `ref`: this rank's shard as a DTensor when `ref` is one (no
    communication: every rank holds the same `full`), else `full` itself."""
    if not isinstance(ref, DTensor):
        return full
    return distribute_tensor(full, ref.device_mesh, ref.placements, src_data_rank=None)


@torch.no_grad()
def write_full_(ref: torch.Tensor, full: torch.Tensor) -> None:
    """Copy a whole-matrix result back into `ref` (its own shard only under FSDP)."""
    if isinstance(ref, DTensor):
        ref.copy_(shard_like(full, ref))
    elif full is not ref:
        ref.copy_(full)
