"""INT4 pack-quantized: the layout equals what compressed-tensors 0.20 produces and decodes."""

from __future__ import annotations

import pytest
import torch
from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32, unpack_from_int32
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from compressed_tensors.quantization.lifecycle.forward import quantize
from compressed_tensors.quantization.utils.helpers import calculate_qparams

from openk2.model.quant import int4
from openk2.model.quant.int4 import (
    dequantize_int4,
    int4_group_size,
    int4_quantization_config,
    pack_int4,
    quantize_int4,
    unpack_int4,
)

ARGS = QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=32)


def _ct_compress(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """compressed-tensors' own minmax qparams + PackedQuantizationCompressor on one weight.

    The format stores bf16 scales, so CT is told `scale_dtype=bfloat16` (a no-op for bf16).
    """
    args = ARGS.model_copy(update={"scale_dtype": torch.bfloat16})
    groups = weight.view(weight.shape[0], -1, 32)
    scale, zero_point = calculate_qparams(groups.amin(-1), groups.amax(-1), args)
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    state = {"weight": weight, "weight_scale": scale, "weight_zero_point": zero_point}
    return PackedQuantizationCompressor.compress(state, scheme)


@pytest.mark.parametrize("little_endian", [True, False])
def test_pack_matches_compressed_tensors_bit_for_bit(
    little_endian: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(int4, "_LITTLE_ENDIAN", little_endian)  # both code paths on this host
    q = torch.randint(-8, 8, (6, 64), dtype=torch.int8)
    q[0, :8] = torch.tensor([-8, 7, 0, -1, 1, -8, 7, 3], dtype=torch.int8)  # sign-bit words
    packed = pack_int4(q)
    assert packed.dtype == torch.int32 and packed.shape == (6, 8)
    assert torch.equal(packed, pack_to_int32(q, 4))
    assert torch.equal(unpack_int4(packed, 64), unpack_from_int32(packed, 4, torch.Size([6, 64])))
    assert torch.equal(unpack_int4(packed, 64), q)


def test_lowest_nibble_holds_first_value_offset_binary() -> None:
    q = torch.tensor([[-8, -7, -6, -5, -4, -3, -2, -1]], dtype=torch.int8)
    word = int(pack_int4(q)[0, 0]) & 0xFFFFFFFF
    assert word == 0x76543210  # nibble k = q_k + 8, first value lowest


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_quantize_equals_compressed_tensors_compressor(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    weight = torch.randn(16, 128, dtype=dtype) * 0.02
    weight[3, 32:64] = 0.0  # an all-zero group takes the eps scale
    ours = quantize_int4(weight)
    theirs = _ct_compress(weight)
    assert torch.equal(ours.weight_packed, theirs["weight_packed"])
    assert torch.equal(ours.weight_scale.to(dtype), theirs["weight_scale"].to(dtype))
    assert ours.weight_scale.dtype == torch.bfloat16
    assert ours.weight_shape.tolist() == theirs["weight_shape"].tolist() == [16, 128]
    assert ours.weight_shape.dtype == torch.int32


def test_dequantize_equals_compressed_tensors_decompress() -> None:
    torch.manual_seed(1)
    weight = torch.randn(8, 96, dtype=torch.bfloat16)
    q = quantize_int4(weight)
    scheme = QuantizationScheme(targets=["Linear"], weights=ARGS)
    state = {
        "weight_packed": q.weight_packed,
        "weight_scale": q.weight_scale,
        "weight_shape": q.weight_shape,
    }
    theirs = PackedQuantizationCompressor.decompress(state, scheme)["weight"]
    ours = dequantize_int4(q.weight_packed, q.weight_scale, (8, 96), dtype=torch.bfloat16)
    assert torch.equal(ours, theirs)


def test_fp16_scales_decode_through_fp32() -> None:
    torch.manual_seed(3)
    q = quantize_int4(torch.randn(4, 64))
    scale16 = q.weight_scale.to(torch.float16) * 1.001  # not representable in bf16
    expected = unpack_int4(q.weight_packed, 64).float().view(4, 2, 32) * scale16.float()[..., None]
    decoded = dequantize_int4(q.weight_packed, scale16, (4, 64), dtype=torch.bfloat16)
    assert torch.equal(decoded, expected.view(4, 64).to(torch.bfloat16))


def test_round_trip_error_is_within_half_a_step() -> None:
    torch.manual_seed(2)
    weight = torch.randn(32, 256)
    q = quantize_int4(weight)
    decoded = dequantize_int4(q.weight_packed, q.weight_scale, (32, 256), dtype=torch.float32)
    step = q.weight_scale.float().repeat_interleave(32, dim=1)
    # Rounding costs at most half a step; +absmax maps to 7.5 and clamps to 7, and the bf16
    # scale (relative error <= 2^-9) moves it at most ~7.5 * 2^-9 steps further (2x margin).
    assert ((decoded - weight).abs() <= step * (0.5 + 7.5 / 256) + 1e-7).all()
    ct_q = quantize(weight, q.weight_scale.float(), None, ARGS, dtype=torch.int8)
    assert torch.equal(unpack_int4(q.weight_packed, 256), ct_q)


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of the group size"):
        quantize_int4(torch.randn(4, 48))
    q = quantize_int4(torch.randn(4, 64))
    with pytest.raises(ValueError, match="does not fit"):
        dequantize_int4(q.weight_packed, q.weight_scale, (4, 72))


def test_quantization_config_round_trips_and_rejects_other_schemes() -> None:
    config = int4_quantization_config()
    assert config["config_groups"]["group_0"]["weights"]["group_size"] == 32
    assert int4_group_size(config) == 32
    config["config_groups"]["group_0"]["weights"]["symmetric"] = False
    with pytest.raises(ValueError, match="symmetric"):
        int4_group_size(config)
