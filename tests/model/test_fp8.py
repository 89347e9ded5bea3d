"""FP8 block-128 weights: decode, including partial edge blocks."""

from __future__ import annotations

import pytest
import torch

from openk2.model.quant.fp8 import (
    FP8_DTYPE,
    dequantize_fp8_block,
    fp8_block_size,
    fp8_quantization_config,
    quantize_fp8_block,
)


def test_dequant_applies_one_scale_per_block_with_partial_edges() -> None:
    weight8 = torch.ones(130, 300).to(FP8_DTYPE)
    scale_inv = torch.arange(1, 7, dtype=torch.float32).view(2, 3)  # ceil(130/128), ceil(300/128)
    out = dequantize_fp8_block(weight8, scale_inv, dtype=torch.float32)
    assert out.shape == (130, 300)
    assert out[0, 0] == 1 and out[127, 127] == 1 and out[0, 128] == 2 and out[0, 299] == 3
    assert out[128, 0] == 4 and out[129, 255] == 5 and out[129, 256] == 6


def test_quantize_dequantize_round_trip_within_fp8_precision() -> None:
    torch.manual_seed(0)
    weight = torch.randn(200, 330) * torch.linspace(0.01, 3.0, 330)
    weight8, scale_inv = quantize_fp8_block(weight)
    assert weight8.dtype == FP8_DTYPE and scale_inv.shape == (2, 3)
    assert scale_inv.dtype == torch.float32
    out = dequantize_fp8_block(weight8, scale_inv, dtype=torch.float32)
    scale = scale_inv.repeat_interleave(128, 0)[:200].repeat_interleave(128, 1)[:, :330]
    # e4m3 keeps 3 mantissa bits (relative error <= 2^-4); subnormals are 2^-9 apart (x scale)
    assert ((out - weight).abs() <= weight.abs() / 16 + scale * 2**-9).all()


def test_bf16_output_and_scale_shape_errors() -> None:
    weight8, scale_inv = quantize_fp8_block(torch.randn(64, 64))
    assert dequantize_fp8_block(weight8, scale_inv).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="does not fit"):
        dequantize_fp8_block(weight8, torch.ones(2, 1))


def test_quantization_config() -> None:
    assert fp8_block_size(fp8_quantization_config()) == (128, 128)
    with pytest.raises(ValueError, match="e4m3"):
        fp8_block_size({"quant_method": "fp8", "fmt": "e5m2"})
