"""What one rank holds: its share of parameters, gradients and optimizer state, and peak RSS.

The state figure counts this rank's own values only (FSDP shards through `to_local`, its own
experts), which is what sharding divides; peak RSS adds activations, the all-gathered layers in
flight, the Python heap and the torch runtime.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

import torch
from torch import nn

from openk2.train.optim.sharded import local_part


@dataclass(kw_only=True, slots=True, frozen=True)
class RankMemory:
    """Bytes one rank holds (state) and its process's high-water mark."""

    params: int
    grads: int
    optimizer: int
    peak_rss: int

    def line(self, rank: int, world: int) -> str:
        """One greppable report line (the benchmark parses it)."""
        mib = 2**20
        return (
            f"rank {rank}/{world} memory: params {self.params / mib:.2f} MiB, grads "
            f"{self.grads / mib:.2f} MiB, optimizer {self.optimizer / mib:.2f} MiB, peak RSS "
            f"{self.peak_rss / mib:.1f} MiB"
        )


def rank_memory(model: nn.Module, optimizer: torch.optim.Optimizer) -> RankMemory:
    """This rank's held bytes and its peak resident memory so far. Gradients are counted at
    their peak, the size of the trainable parameters (the loop frees them after each step)."""
    params = [local_part(p) for p in model.parameters()]
    grads = [local_part(p) for p in model.parameters() if p.requires_grad]
    states = [
        local_part(v)
        for state in optimizer.state.values()
        for v in state.values()
        if isinstance(v, torch.Tensor)
    ]
    return RankMemory(
        params=_bytes(params), grads=_bytes(grads), optimizer=_bytes(states), peak_rss=_peak_rss()
    )


def _bytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _peak_rss() -> int:
    """ru_maxrss is KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
