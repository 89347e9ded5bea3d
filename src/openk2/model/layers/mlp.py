"""SwiGLU feed-forward down(silu(gate(x)) * up(x)): dense layers, each expert, shared expert."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.layers.decode_tables import (
    DecodeFormat,
    DerivedTable,
    linear_table,
    matvec,
    no_grad_single_token,
    swiglu_weights,
)


class MLP(nn.Module):
    """Bias-free SwiGLU with HF checkpoint names `gate_proj`, `up_proj`, `down_proj`.

    With `decode_tables` (dense layers; experts go through `ExpertTables` instead), a single
    token without autograd runs on cached transposed copies: gate and up fused into one call.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, *, decode_tables: bool = False):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self._tables = (DerivedTable(), DerivedTable()) if decode_tables else None
        self.decode_format: DecodeFormat = "native"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._tables is not None and no_grad_single_token(x) and self._plain():
            return self._forward_one(x)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    def _plain(self) -> bool:
        return swiglu_weights(self) is not None

    def _forward_one(self, x: torch.Tensor) -> torch.Tensor:
        """One token through the fused [D, 2I] gate/up table and the [I, D] down table."""
        assert self._tables is not None
        gate_up, down = self._tables
        fmt = self.decode_format
        pair, single = [self.gate_proj.weight, self.up_proj.weight], [self.down_proj.weight]
        table_DF = gate_up.get(pair, lambda: linear_table(pair, fmt), fmt)
        table_ID = down.get(single, lambda: linear_table(single, fmt), fmt)
        gate_1I, up_1I = matvec(x.reshape(1, -1), table_DF).chunk(2, dim=-1)
        return matvec(F.silu(gate_1I).mul_(up_1I), table_ID).view_as(x)
