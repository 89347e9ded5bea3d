"""INT4 routed experts in the compressed-tensors `pack-quantized` format (K2-Thinking, K2.5/K2.6).

Symmetric, weight-only, one bf16 scale per group of 32 consecutive input channels, no zero point.
Eight 4-bit values are packed into each int32 along the input dim, lowest nibble first, stored
offset-binary (q + 8). A linear weight W [O, I] becomes three tensors:
    weight_packed [O, I/8] int32;  weight_scale [O, I/32] bf16;  weight_shape [2] int32 = (O, I)
and decodes as W[o, i] = q[o, i] * scale[o, i // 32]. The quantizer uses the compressed-tensors
minmax rule (scale = absmax / 7.5, round half to even, clamp to [-8, 7]) so its output equals what
that package produces for the same weight.

Shape legend: O output features, I input features, G groups per row (I / group size).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch

NUM_BITS = 4
GROUP_SIZE = 32
VALUES_PER_WORD = 32 // NUM_BITS  # 8 nibbles per int32
Q_MIN, Q_MAX = -8, 7
OFFSET = 8  # offset-binary: stored nibble = q + 8
SCALE_DTYPE = torch.bfloat16
_HALF_RANGE = (Q_MAX - Q_MIN) / 2  # 7.5, the compressed-tensors symmetric divisor
_BYTE_SHIFTS = torch.arange(4, dtype=torch.int64) * 8
# Word bytes are reinterpreted in place where the host stores them least significant first.
_LITTLE_ENDIAN = sys.byteorder == "little"


@dataclass(frozen=True, slots=True)
class Int4Weight:
    """The three stored tensors of one pack-quantized linear weight."""

    weight_packed: torch.Tensor  # [O, I/8] int32
    weight_scale: torch.Tensor  # [O, I/group] bf16
    weight_shape: torch.Tensor  # [2] int32 = (O, I)


def pack_int4(q_OI: torch.Tensor) -> torch.Tensor:
    """Pack int values in [-8, 7] ([O, I], I a multiple of 8) into int32 words [O, I/8]."""
    out_features, in_features = q_OI.shape
    if in_features % VALUES_PER_WORD:
        raise ValueError(f"in_features {in_features} is not a multiple of {VALUES_PER_WORD}")
    nibbles = (q_OI.to(torch.int16) + OFFSET).to(torch.uint8).view(out_features, -1, 2)
    bytes_OB = nibbles[..., 0] | (nibbles[..., 1] << 4)  # byte b holds values 2b (low), 2b+1
    if _LITTLE_ENDIAN:
        return bytes_OB.contiguous().view(torch.int32)
    words = bytes_OB.view(out_features, -1, 4).to(torch.int64) << _BYTE_SHIFTS.to(q_OI.device)
    words = words.sum(dim=-1)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def unpack_int4(packed: torch.Tensor, in_features: int) -> torch.Tensor:
    """Inverse of `pack_int4`: int32 words [O, I/8] -> int8 values in [-8, 7], shape [O, I]."""
    return _unpack_nibbles(packed, in_features).view(torch.int8) - OFFSET


def _unpack_nibbles(packed: torch.Tensor, in_features: int) -> torch.Tensor:
    """Stored nibbles (q + 8, uint8) [O, I] of int32 words [O, I/8], lowest nibble first."""
    out_features, n_words = packed.shape
    if n_words * VALUES_PER_WORD != in_features:
        raise ValueError(
            f"packed width {n_words} does not hold {in_features} values ({VALUES_PER_WORD}/word)"
        )
    if _LITTLE_ENDIAN:
        bytes_OB = packed.contiguous().view(torch.uint8)
    else:
        words = packed.to(torch.int64).unsqueeze(-1) >> _BYTE_SHIFTS.to(packed.device)
        bytes_OB = (words & 0xFF).to(torch.uint8).view(out_features, -1)
    nibbles = torch.empty(
        out_features, in_features // 2, 2, dtype=torch.uint8, device=packed.device
    )
    torch.bitwise_and(bytes_OB, 0xF, out=nibbles[..., 0])
    torch.bitwise_right_shift(bytes_OB, 4, out=nibbles[..., 1])
    return nibbles.view(out_features, in_features)


def quantize_int4(weight_OI: torch.Tensor, group_size: int = GROUP_SIZE) -> Int4Weight:
    """Quantize a float weight [O, I] to pack-quantized INT4 with bf16 group scales.

    The scale is computed in the weight's dtype, rounded to bf16 (compressed-tensors with
    `scale_dtype=bfloat16`; for bf16 weights that is its default), and the weight is rounded
    against that stored scale, so decoding reproduces exactly the values the rounding chose.
    """
    out_features, in_features = weight_OI.shape
    _check_group(in_features, group_size)
    groups_OGS = weight_OI.view(out_features, in_features // group_size, group_size)
    absmax_OG = groups_OGS.abs().amax(dim=-1)
    scale_OG = absmax_OG / torch.tensor(_HALF_RANGE, dtype=weight_OI.dtype)
    scale_OG = scale_OG.to(SCALE_DTYPE)
    eps = torch.finfo(SCALE_DTYPE).eps  # an all-zero group gets the smallest step, as in CT
    scale_OG = torch.where(scale_OG == 0, torch.full_like(scale_OG, eps), scale_OG)
    scaled_OGS = groups_OGS / scale_OG.to(weight_OI.dtype).unsqueeze(-1)
    q_OI = torch.round(torch.clamp(scaled_OGS, Q_MIN, Q_MAX)).to(torch.int8).view_as(weight_OI)
    shape = torch.tensor([out_features, in_features], dtype=torch.int32)
    return Int4Weight(weight_packed=pack_int4(q_OI), weight_scale=scale_OG, weight_shape=shape)


def dequantize_int4(
    packed: torch.Tensor,
    scale: torch.Tensor,
    shape: tuple[int, int],
    *,
    dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """Decode pack-quantized INT4 to a float weight [O, I] of `dtype`."""
    out_features, in_features = shape
    if tuple(packed.shape) != (out_features, in_features // VALUES_PER_WORD):
        raise ValueError(f"weight_packed {list(packed.shape)} does not fit weight_shape {shape}")
    n_groups = scale.shape[-1]
    if scale.shape[0] != out_features or n_groups == 0 or in_features % n_groups:
        raise ValueError(f"weight_scale {list(scale.shape)} does not fit weight_shape {shape}")
    # q * scale is exact in fp32, and in bf16 arithmetic (which rounds the exact product once)
    # when the scale is bf16: compute directly in those; anything else goes through fp32.
    direct = dtype == torch.float32 or dtype == scale.dtype == torch.bfloat16
    compute = dtype if direct else torch.float32
    nibbles_OGS = _unpack_nibbles(packed, in_features).view(out_features, n_groups, -1)
    weight_OGS = (nibbles_OGS.to(compute) - OFFSET) * scale.to(compute).unsqueeze(-1)
    return weight_OGS.view(out_features, in_features).to(dtype)


def _check_group(in_features: int, group_size: int) -> None:
    if group_size <= 0 or group_size % VALUES_PER_WORD or in_features % group_size:
        raise ValueError(
            f"in_features {in_features} must be a multiple of the group size {group_size}, "
            f"itself a multiple of {VALUES_PER_WORD}"
        )


def int4_quantization_config(group_size: int = GROUP_SIZE) -> dict[str, Any]:
    """The `quantization_config` block of a K2.5/K2.6 config.json (routed experts only)."""
    weights = {
        "num_bits": NUM_BITS,
        "type": "int",
        "symmetric": True,
        "strategy": "group",
        "group_size": group_size,
        "dynamic": False,
        "observer": "minmax",
        "actorder": None,
        "block_structure": None,
    }
    group = {
        "targets": ["Linear"],
        "input_activations": None,
        "output_activations": None,
        "weights": weights,
    }
    return {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "quantization_status": "compressed",
        "kv_cache_scheme": None,
        "config_groups": {"group_0": group},
        "ignore": [
            "lm_head",
            "re:.*self_attn.*",
            "re:.*shared_experts.*",
            r"re:.*mlp\.(gate|up|gate_up|down)_proj.*",
        ],
    }


def int4_group_size(quant_config: dict[str, Any]) -> int:
    """Validate a compressed-tensors config as symmetric INT4 group pack-quantized; its group."""
    if quant_config.get("format") != "pack-quantized":
        raise ValueError(f"unsupported compressed-tensors format {quant_config.get('format')!r}")
    groups = quant_config.get("config_groups") or {}
    sizes = set()
    for name, group in groups.items():
        weights = (group or {}).get("weights") or {}
        expected = {"num_bits": NUM_BITS, "type": "int", "symmetric": True, "strategy": "group"}
        wrong = {k: weights.get(k) for k, v in expected.items() if weights.get(k) != v}
        if wrong:
            raise ValueError(f"config group {name!r}: unsupported weight scheme {wrong}")
        sizes.add(int(weights.get("group_size") or GROUP_SIZE))
    if len(sizes) > 1:
        raise ValueError(f"config groups disagree on group_size: {sorted(sizes)}")
    return sizes.pop() if sizes else GROUP_SIZE
