"""FP8 block-quantized weights (K2-Base / K2-Instruct, the DeepSeek-V3 convention).

A quantized linear weight W [O, I] is stored as `weight` float8_e4m3fn [O, I] plus
`weight_scale_inv` float32 [ceil(O/128), ceil(I/128)], one scale per 128x128 block (edge blocks
are partial when O or I is not a multiple of 128), and decodes as
W[o, i] = weight[o, i] * weight_scale_inv[o // 128, i // 128].

Shape legend: O output features, I input features, R/C block rows/columns.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

BLOCK = 128
FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8_DTYPE).max  # 448


def dequantize_fp8_block(
    weight_OI: torch.Tensor,
    scale_inv_RC: torch.Tensor,
    *,
    block: tuple[int, int] = (BLOCK, BLOCK),
    dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """Decode an FP8 block-quantized weight to `dtype` (products in fp32, then one rounding)."""
    out_features, in_features = weight_OI.shape
    block_o, block_i = block
    expected = (math.ceil(out_features / block_o), math.ceil(in_features / block_i))
    if tuple(scale_inv_RC.shape) != expected:
        raise ValueError(
            f"weight_scale_inv {list(scale_inv_RC.shape)} does not fit weight "
            f"{[out_features, in_features]} with {block_o}x{block_i} blocks (expected "
            f"{list(expected)})"
        )
    rows, cols = expected
    pad = (0, cols * block_i - in_features, 0, rows * block_o - out_features)
    padded = F.pad(weight_OI.view(torch.uint8), pad).view(FP8_DTYPE)  # partial edge blocks
    blocks_RbCb = padded.view(rows, block_o, cols, block_i).to(torch.float32)
    blocks_RbCb *= scale_inv_RC.to(torch.float32)[:, None, :, None]
    decoded = blocks_RbCb.view(rows * block_o, cols * block_i)[:out_features, :in_features]
    return decoded.to(dtype).contiguous()


def quantize_fp8_block(
    weight_OI: torch.Tensor, *, block: tuple[int, int] = (BLOCK, BLOCK)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize a float weight to (float8_e4m3fn weight, float32 scale_inv) with absmax blocks."""
    out_features, in_features = weight_OI.shape
    block_o, block_i = block
    rows, cols = math.ceil(out_features / block_o), math.ceil(in_features / block_i)
    padded = torch.zeros(rows * block_o, cols * block_i, dtype=torch.float32)
    padded[:out_features, :in_features] = weight_OI.to(torch.float32)
    blocks_RbCb = padded.view(rows, block_o, cols, block_i)
    absmax_RC = blocks_RbCb.abs().amax(dim=(1, 3))
    scale_inv_RC = torch.where(absmax_RC > 0, absmax_RC / FP8_MAX, torch.ones_like(absmax_RC))
    scaled = blocks_RbCb / scale_inv_RC[:, None, :, None]
    weight8 = scaled.clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE).view(rows * block_o, cols * block_i)
    return weight8[:out_features, :in_features].contiguous(), scale_inv_RC


def fp8_quantization_config(block: tuple[int, int] = (BLOCK, BLOCK)) -> dict[str, Any]:
    """The `quantization_config` block of a K2-Instruct style config.json."""
    return {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": list(block),
    }


def fp8_block_size(quant_config: dict[str, Any]) -> tuple[int, int]:
    """Validate an fp8 quantization_config and return its (rows, cols) block size."""
    fmt = quant_config.get("fmt", "e4m3")
    if fmt != "e4m3":
        raise ValueError(f"unsupported fp8 format {fmt!r}; only e4m3 is supported")
    block = quant_config.get("weight_block_size") or [BLOCK, BLOCK]
    if len(block) != 2 or not all(isinstance(b, int) and b > 0 for b in block):
        raise ValueError(f"weight_block_size must be two positive ints, got {block!r}")
    return block[0], block[1]
