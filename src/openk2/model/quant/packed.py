"""Weight-only int8 / int4 in the layouts of PyTorch's packed CPU kernels.

Why these kernels: `torch._weight_int8pack_mm` and `torch._weight_int4pack_mm_for_cpu` are
ATen's own weight-only GEMM/GEMV kernels (maintained upstream, vectorised for AVX2/AVX512),
which multiply by a quantized weight without ever dequantizing the whole matrix. Both are fast
only with bf16 (or fp16) activations; fp32 activations take a scalar path ~30-70x slower
(`../shared/spec/performance.md` §1.2), so `packed_matmul` always feeds them bf16.

int8: symmetric per output channel, q = round(w / s) in [-127, 127], s = absmax / 127 (one
bf16 scale per row; the kernel's layout is the plain [O, I] int8 matrix plus scales [O]).

int4: the compressed-tensors symmetric group format of `int4.py` (q in [-8, 7], one bf16 scale
per group of 32 inputs, stored offset-binary q + 8) maps exactly onto the ATen kernel, which
decodes w = (u - 8) * scale + zero from an unsigned nibble u and a (scale, zero) pair per group:
u = q + 8 (the stored nibble itself), the same scale, zero = 0. The kernel's weight layout
([O, I/2] uint8 from `_convert_weight_to_int4pack_for_cpu`) holds 0.5 byte per weight and its
scale/zero table [G, O, 2] bf16 another 4 bytes per group: 0.625 bytes per weight at group 32.

Shape legend: O output features, I input features, G groups per row (I / group size), M rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch

from openk2.model.quant.int4 import Int4Weight, _unpack_nibbles, quantize_int4

WeightFormat = Literal["int8", "int4"]
WEIGHT_FORMATS: tuple[WeightFormat, ...] = ("int8", "int4")
COMPUTE_DTYPE = torch.bfloat16
"""Activation dtype the kernels run in (their fast path)."""
INT8_MAX = 127
INT4_GROUP_SIZES = (32, 64, 128, 256)
"""Group sizes the ATen CPU int4 kernel supports."""
INT4_ROW_MULTIPLE = 16
"""The int4 packing works on blocks of 16 output rows."""


@dataclass(frozen=True, slots=True)
class PackedWeight:
    """One weight in a kernel layout: `data` (int8 [O, I] or int4-packed uint8 [O, I/2]) and
    `scales` (bf16 [O] for int8, bf16 scale+zero [G, O, 2] for int4)."""

    fmt: WeightFormat
    data: torch.Tensor
    scales: torch.Tensor
    out_features: int
    in_features: int
    group_size: int = 0  # int4 only

    def nbytes(self) -> int:
        """Bytes held in memory by this weight."""
        return _nbytes(self.data) + _nbytes(self.scales)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


@functools.cache
def packed_kernels_available() -> bool:
    """Whether this torch build has both packed CPU kernels and they compute correctly
    (64 products of 1 and -1: int8 codes -127 of step 1/127; int4 codes -7 of step
    bf16(1/7.5) = 0.1338, which rounds up, so -1 / step rounds to -7)."""
    weight = -torch.ones(16, 64)
    x = torch.ones(1, 64, dtype=COMPUTE_DTYPE)
    expected = {"int8": 64.0, "int4": 64.0 * 7 * torch.tensor(1 / 7.5).bfloat16().item()}
    try:
        outs = {fmt: packed_matmul(x, pack_weight(weight, fmt)).float() for fmt in WEIGHT_FORMATS}
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return all(
        torch.allclose(outs[fmt], torch.full((1, 16), -expected[fmt]), rtol=1e-2)
        for fmt in WEIGHT_FORMATS
    )


def pack_weight(weight_OI: torch.Tensor, fmt: WeightFormat, group_size: int = 32) -> PackedWeight:
    """Quantize a float weight [O, I] into the kernel layout of `fmt`."""
    if fmt == "int8":
        return pack_int8(weight_OI)
    if fmt == "int4":
        return pack_int4_weight(quantize_int4(weight_OI.detach().cpu(), group_size))
    raise ValueError(f"weight format must be one of {WEIGHT_FORMATS}, got {fmt!r}")


def pack_int8(weight_OI: torch.Tensor) -> PackedWeight:
    """Symmetric per-row int8: q = round(w / s), s = absmax(row) / 127 rounded to bf16."""
    weight = weight_OI.detach().float().cpu()
    scale_O = (weight.abs().amax(dim=1) / INT8_MAX).to(COMPUTE_DTYPE)
    scale_O = torch.where(scale_O == 0, torch.ones_like(scale_O), scale_O)
    q_OI = torch.round(weight / scale_O.float().unsqueeze(1)).clamp(-INT8_MAX, INT8_MAX)
    out_features, in_features = weight.shape
    return PackedWeight("int8", q_OI.to(torch.int8), scale_O, out_features, in_features)


def pack_int4_weight(weight: Int4Weight) -> PackedWeight:
    """The ATen int4 layout of a compressed-tensors INT4 weight, exactly (no re-rounding)."""
    out_features, in_features = (int(v) for v in weight.weight_shape.tolist())
    groups = weight.weight_scale.shape[-1]
    group_size = in_features // groups
    if group_size not in INT4_GROUP_SIZES or group_size * groups != in_features:
        raise ValueError(
            f"int4 group size {in_features}/{groups} is not one the CPU kernel supports "
            f"({', '.join(map(str, INT4_GROUP_SIZES))})"
        )
    if out_features % INT4_ROW_MULTIPLE:
        raise ValueError(
            f"int4 packing needs out_features divisible by {INT4_ROW_MULTIPLE}, got {out_features}"
        )
    nibbles_OI = _unpack_nibbles(weight.weight_packed.cpu(), in_features).to(torch.int32)
    data = torch._convert_weight_to_int4pack_for_cpu(nibbles_OI, 1)
    scale_GO = weight.weight_scale.to(COMPUTE_DTYPE).t()
    scales = torch.stack([scale_GO, torch.zeros_like(scale_GO)], dim=-1).contiguous()
    return PackedWeight("int4", data, scales, out_features, in_features, group_size)


def packed_matmul(x_MI: torch.Tensor, weight: PackedWeight) -> torch.Tensor:
    """x [M, I] @ W.T -> [M, O] in bf16 (x is cast to bf16 first; the kernels accumulate in
    fp32)."""
    x = x_MI.to(COMPUTE_DTYPE).contiguous()
    if weight.fmt == "int8":
        return torch._weight_int8pack_mm(x, weight.data, weight.scales)
    return torch._weight_int4pack_mm_for_cpu(x, weight.data, weight.group_size, weight.scales)

