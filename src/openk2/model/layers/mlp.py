"""SwiGLU feed-forward down(silu(gate(x)) * up(x)): dense layers, each expert, shared expert."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """Bias-free SwiGLU with HF checkpoint names `gate_proj`, `up_proj`, `down_proj`."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    def add_into_(self, out_ND: torch.Tensor, x_ND: torch.Tensor, scale: float) -> None:
        """out += scale * self(x), in place with as few ops as possible (the decode hot path)."""
        hidden = F.silu(F.linear(x_ND, self.gate_proj.weight))
        hidden.mul_(F.linear(x_ND, self.up_proj.weight))
        out_ND.addmm_(hidden, self.down_proj.weight.t(), alpha=scale)
