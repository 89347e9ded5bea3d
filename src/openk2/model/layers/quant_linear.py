"""`QuantLinear`: a bias-free linear layer whose weight lives only in a packed int8/int4 layout.

Why a module and not a derived table: the point of weight-only quantization here is memory as
much as speed (a real K2.6 checkpoint's INT4 experts must not exist as bf16 copies), so the
float weight is gone, not shadowed. It replaces an `nn.Linear` in place (same module name, so
the surrounding code calls it as a module: the decode tables and packed GEMMs of
`decode_tables.py` / `linear.py` see no plain weight and step aside), and multiplies through
PyTorch's packed CPU kernels (`quant/packed.py`) for any number of rows: single-token decode
and batched serving alike. Inference only: it has no parameters and no gradient.

Activations go to the kernels in bf16 and come back in the input's dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from openk2.model.quant.int4 import Int4Weight
from openk2.model.quant.packed import (
    COMPUTE_DTYPE,
    PackedWeight,
    WeightFormat,
    pack_int4_weight,
    pack_weight,
)


class QuantLinear(nn.Module):
    """y = x W^T with W stored as `qweight` + `qscales` in the kernel layout of `fmt`."""

    def __init__(self, packed: PackedWeight) -> None:
        super().__init__()
        self.fmt: WeightFormat = packed.fmt
        self.in_features = packed.in_features
        self.out_features = packed.out_features
        self.group_size = packed.group_size
        self.register_buffer("qweight", packed.data)
        self.register_buffer("qscales", packed.scales)

    @classmethod
    def from_linear(cls, linear: nn.Linear, fmt: WeightFormat) -> QuantLinear:
        """Quantize a bias-free linear's weight (int8 per row; int4 group 32, symmetric)."""
        if linear.bias is not None:
            raise ValueError("QuantLinear has no bias; quantize bias-free linears only")
        return cls(pack_weight(linear.weight.detach(), fmt))

    @classmethod
    def from_int4(cls, weight: Int4Weight) -> QuantLinear:
        """A compressed-tensors INT4 weight as stored in a checkpoint, without re-rounding."""
        return cls(pack_int4_weight(weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_MI = x.reshape(-1, self.in_features)
        if x_MI.dtype != COMPUTE_DTYPE or not x_MI.is_contiguous():  # the kernels need both
            x_MI = x_MI.to(COMPUTE_DTYPE, memory_format=torch.contiguous_format)
        if self.fmt == "int8":
            out = torch._weight_int8pack_mm(x_MI, self.qweight, self.qscales)
        else:
            out = torch._weight_int4pack_mm_for_cpu(
                x_MI, self.qweight, self.group_size, self.qscales
            )
        if out.dtype != x.dtype:
            out = out.to(x.dtype)
        return out.view(*x.shape[:-1], self.out_features)

    def nbytes(self) -> int:
        """Bytes of weight memory (codes plus scales)."""
        return sum(t.numel() * t.element_size() for t in (self.qweight, self.qscales))

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.fmt == "int4" else ""
        return f"{self.in_features}, {self.out_features}, fmt={self.fmt}{group}"
