"""SwiGLU feed-forward down(silu(gate(x)) * up(x)): dense layers, each expert, shared expert."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.layers.decode_tables import (
    DecodeFormat,
    DerivedTable,
    swiglu_weights,
    table_linear,
)
from openk2.model.layers.linear import FastPath, PackedGemm, use_packed
from openk2.model.layers.quant_linear import QuantLinear


class MLP(nn.Module):
    """Bias-free SwiGLU with HF checkpoint names `gate_proj`, `up_proj`, `down_proj`.

    Inference without autograd runs on derived weight copies, gate and up fused into one
    product: a single token on decode tables when built with `decode_tables` (dense layers;
    experts go through `ExpertTables` instead), several rows on packed GEMMs when
    `packed_gemms` is on (`linear.py`). Hooked projections (LoRA) run as modules.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, *, decode_tables: bool = False):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self._tables = (DerivedTable(), DerivedTable()) if decode_tables else None
        self.decode_format: DecodeFormat = "native"
        self.packed_gemms = False
        self._packs = (PackedGemm(), PackedGemm())
        self.gate_up_proj: QuantLinear | None = None
        """gate and up fused into one quantized layer (`fuse_quantized`); they are then None."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up_proj is not None:
            return self.down_proj(swiglu(self.gate_up_proj(x)))
        path = self._fast_path(x)
        if path is None:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self._down(swiglu(self._gate_up(x, path)), path)

    def packed_gemm_weights(self) -> list[tuple[PackedGemm, tuple[torch.Tensor, ...]]]:
        """Each packed GEMM with the weights it packs (see `enable_packed_gemms`); none when
        a projection is not a plain linear (hooked or quantized)."""
        if swiglu_weights(self) is None:
            return []
        gate_up = (self.gate_proj.weight, self.up_proj.weight)
        return [(self._packs[0], gate_up), (self._packs[1], (self.down_proj.weight,))]

    def gate_up(self, x: torch.Tensor) -> torch.Tensor:
        """[gate(x) ; up(x)] along the last axis, as one packed GEMM where that applies (the
        MoE's batch path runs every expert's activation in one op between these two calls)."""
        if self.gate_up_proj is not None:
            return self.gate_up_proj(x)
        if self._fast_path(x) == "packed":
            return self._gate_up(x, "packed")
        return torch.cat([self.gate_proj(x), self.up_proj(x)], dim=-1)

    def fuse_quantized(self) -> bool:
        """Fuse quantized gate and up projections into `gate_up_proj` (one kernel call per token
        instead of two, the same numbers); whether this MLP is now fused."""
        gate, up = self._modules.get("gate_proj"), self._modules.get("up_proj")
        if isinstance(gate, QuantLinear) and isinstance(up, QuantLinear):
            if not QuantLinear.can_concat([gate, up]):
                return False
            self.gate_up_proj = QuantLinear.concat([gate, up])
            self.gate_proj = self.up_proj = None
        return self.gate_up_proj is not None

    def down(self, hidden: torch.Tensor) -> torch.Tensor:
        """down_proj(hidden), on the packed weight where that applies."""
        if self._fast_path(hidden) == "packed":
            return self._down(hidden, "packed")
        return self.down_proj(hidden)

    def _fast_path(self, x: torch.Tensor) -> FastPath | None:
        """Which derived weights a forward on x uses, if any."""
        if torch.is_grad_enabled() or swiglu_weights(self) is None:
            return None  # also when a projection is quantized (`QuantLinear`)
        if x.numel() == x.shape[-1]:
            path: FastPath | None = "table" if self._tables else None
        else:
            path = "packed" if use_packed(self.packed_gemms, x, self.down_proj.weight) else None
        return path

    def _gate_up(self, x: torch.Tensor, path: FastPath) -> torch.Tensor:
        weights = (self.gate_proj.weight, self.up_proj.weight)
        if path == "table" and self._tables is not None:
            return table_linear(self._tables[0], x, weights, self.decode_format)
        return self._packs[0](x, *weights)

    def _down(self, hidden: torch.Tensor, path: FastPath) -> torch.Tensor:
        weight = self.down_proj.weight
        if path == "table" and self._tables is not None:
            return table_linear(self._tables[1], hidden, (weight,), self.decode_format)
        return self._packs[1](hidden, weight)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up from [gate ; up] concatenated along the last axis."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate).mul_(up)
