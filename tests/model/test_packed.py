"""The packed int8/int4 CPU kernels against dequantize-then-matmul references."""

from __future__ import annotations

import pytest
import torch

from openk2.model.quant.int4 import dequantize_int4, quantize_int4
from openk2.model.quant.packed import (
    pack_int4_weight,
    pack_weight,
    packed_kernels_available,
    packed_matmul,
)

pytestmark = pytest.mark.skipif(
    not packed_kernels_available(), reason="torch build lacks the packed CPU kernels"
)
SHAPES = [(16, 64), (256, 768), (768, 256), (48, 96)]


def _close(out: torch.Tensor, ref: torch.Tensor) -> None:
    """Equal up to the kernel's bf16 output rounding (plus fp32 summation order)."""
    assert out.dtype == torch.bfloat16
    err = (out.float() - ref).abs().max().item()
    assert err <= 8e-3 * ref.abs().max().item() + 1e-6, err


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rows", [1, 5])
def test_int8_kernel_matches_dequantized_reference(shape: tuple[int, int], rows: int) -> None:
    weight = torch.randn(shape) * 0.02
    packed = pack_weight(weight, "int8")
    x = torch.randn(rows, shape[1]).bfloat16()
    dequantized = packed.data.float() * packed.scales.float().unsqueeze(1)
    _close(packed_matmul(x, packed), x.float() @ dequantized.t())


def test_int8_codes_are_symmetric_per_row() -> None:
    weight = torch.randn(32, 64)
    packed = pack_weight(weight, "int8")
    assert packed.data.dtype == torch.int8 and packed.scales.shape == (32,)
    assert packed.data.abs().amax(dim=1).eq(127).all()  # the row's absmax maps to +-127
    dequantized = packed.data.float() * packed.scales.float().unsqueeze(1)
    step = packed.scales.float().unsqueeze(1)
    assert ((dequantized - weight).abs() <= step * 0.51 + 1e-6).all()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rows", [1, 5])
def test_int4_kernel_matches_compressed_tensors_dequantized(
    shape: tuple[int, int], rows: int
) -> None:
    weight = quantize_int4(torch.randn(shape) * 0.02)
    packed = pack_int4_weight(weight)
    reference = dequantize_int4(
        weight.weight_packed, weight.weight_scale, shape, dtype=torch.float32
    )
    x = torch.randn(rows, shape[1]).bfloat16()
    _close(packed_matmul(x, packed), x.float() @ reference.t())


def test_int4_mapping_is_exact_on_unit_inputs() -> None:
    """Identity rows read each weight back: the kernel's weight equals the checkpoint's decode
    to bf16 output precision (scale mapped unchanged, zero 0, nibble q + 8)."""
    weight = quantize_int4(torch.randn(32, 64))
    reference = dequantize_int4(weight.weight_packed, weight.weight_scale, (32, 64))
    read = packed_matmul(torch.eye(64, dtype=torch.bfloat16), pack_int4_weight(weight)).t()
    assert torch.equal(read, reference)


def test_int4_layout_bytes() -> None:
    packed = pack_weight(torch.randn(64, 256), "int4")
    assert packed.nbytes() / (64 * 256) == 0.625  # 0.5 code + 4 bytes (scale, zero) / 32


def test_fp32_inputs_are_computed_in_bf16() -> None:
    weight = torch.randn(16, 64)
    packed = pack_weight(weight, "int8")
    x = torch.randn(2, 64)
    assert torch.equal(packed_matmul(x, packed), packed_matmul(x.bfloat16(), packed))


def test_unsupported_shapes_and_formats_fail_clearly() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        pack_weight(torch.randn(8, 64), "int4")
    with pytest.raises(ValueError, match="group size"):
        pack_int4_weight(quantize_int4(torch.randn(16, 64), group_size=8))
    with pytest.raises(ValueError, match="weight format"):
        pack_weight(torch.randn(16, 64), "int2")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_fused_layers_equal_the_packing_of_the_joined_weight(fmt: str) -> None:
    from openk2.model.layers.quant_linear import QuantLinear

    gate, up = torch.randn(64, 64), torch.randn(128, 64)  # int4 rows pack in blocks of 64
    fused = QuantLinear.concat([QuantLinear(pack_weight(w, fmt)) for w in (gate, up)])
    joined = pack_weight(torch.cat([gate, up]), fmt)
    assert torch.equal(fused.qweight, joined.data) and torch.equal(fused.qscales, joined.scales)
    x = torch.randn(3, 64).bfloat16()
    assert torch.equal(fused(x), packed_matmul(x, joined))
    with pytest.raises(ValueError, match="cannot fuse"):
        QuantLinear.concat([fused, QuantLinear(pack_weight(torch.randn(16, 32), fmt))])


def test_int4_layers_of_other_widths_are_not_fused() -> None:
    from openk2.model.layers.quant_linear import QuantLinear

    parts = [QuantLinear(pack_weight(torch.randn(32, 64), "int4")) for _ in range(2)]
    assert not QuantLinear.can_concat(parts)  # 32-row blocks would interleave wrongly
