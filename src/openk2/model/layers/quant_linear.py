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

INT4_CONCAT_ROWS = 64
"""Row block of the int4 CPU layout: packed int4 layers of such widths concatenate exactly."""


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

    @classmethod
    def concat(cls, layers: list[QuantLinear]) -> QuantLinear:
        """One layer computing `layers` side by side ([y_0 ; y_1 ; ...] along the output axis)
        on the same input, exact (no re-rounding): int8 rows concatenate as they are; the int4
        CPU layout packs rows in blocks of 64, so int4 layers join only when each part's width
        is a multiple of 64 (see `can_concat`)."""
        if not cls.can_concat(layers):
            raise ValueError(
                "cannot fuse these layers: formats or inputs differ, or an int4 width is not a "
                f"multiple of {INT4_CONCAT_ROWS}"
            )
        first = layers[0]
        scale_axis = 0 if first.fmt == "int8" else 1  # int4 scales are [G, O, 2]
        packed = PackedWeight(
            first.fmt,
            torch.cat([q.qweight for q in layers]),
            torch.cat([q.qscales for q in layers], dim=scale_axis),
            sum(q.out_features for q in layers),
            first.in_features,
            first.group_size,
        )
        return cls(packed)

    @staticmethod
    def can_concat(layers: list[QuantLinear]) -> bool:
        """Whether `concat` can join these layers exactly."""
        if len({(q.fmt, q.in_features, q.group_size) for q in layers}) != 1:
            return False
        widths = [q.out_features for q in layers]
        return layers[0].fmt == "int8" or all(w % INT4_CONCAT_ROWS == 0 for w in widths)

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
