"""SwiGLU feed-forward down(silu(gate(x)) * up(x)): dense layers, each expert, shared expert."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.layers.linear import PackedGemm, use_packed


class MLP(nn.Module):
    """Bias-free SwiGLU with HF checkpoint names `gate_proj`, `up_proj`, `down_proj`.

    With `packed_gemms` on (see `layers/linear.py`), inference runs gate and up as one GEMM on
    a packed [2F, D] weight and down on a packed [D, F] one.
    """

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.packed_gemms = False
        self._gate_up = PackedGemm()
        self._down = PackedGemm()

    def packed_gemm_weights(self) -> list[tuple[PackedGemm, tuple[torch.Tensor, ...]]]:
        """Each packed GEMM with the weights it packs (see `enable_packed_gemms`)."""
        gate_up = (self.gate_proj.weight, self.up_proj.weight)
        return [(self._gate_up, gate_up), (self._down, (self.down_proj.weight,))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_packed(self.packed_gemms, x, self.down_proj.weight):
            return self.down(swiglu(self.gate_up(x)))
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    def add_into_(self, out_ND: torch.Tensor, x_ND: torch.Tensor, scale: float) -> None:
        """out += scale * self(x), in place with as few ops as possible (the decode hot path).

        One row (the single-token MoE path) needs no packed weights: MKL's GEMV is as fast.
        """
        hidden = F.silu(F.linear(x_ND, self.gate_proj.weight))
        hidden.mul_(F.linear(x_ND, self.up_proj.weight))
        out_ND.addmm_(hidden, self.down_proj.weight.t(), alpha=scale)

    def gate_up(self, x: torch.Tensor) -> torch.Tensor:
        """[gate(x) ; up(x)] along the last axis: one GEMM on the packed weight when enabled."""
        if use_packed(self.packed_gemms, x, self.gate_proj.weight):
            return self._gate_up(x, self.gate_proj.weight, self.up_proj.weight)
        return torch.cat([self.gate_proj(x), self.up_proj(x)], dim=-1)

    def down(self, hidden: torch.Tensor) -> torch.Tensor:
        """down_proj(hidden), on the packed weight when enabled."""
        if use_packed(self.packed_gemms, hidden, self.down_proj.weight):
            return self._down(hidden, self.down_proj.weight)
        return self.down_proj(hidden)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up from [gate ; up] concatenated along the last axis."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate).mul_(up)
