"""YaRN frequencies, softmax scale and interleaved rotation follow the DeepSeek formulas."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import DeepseekV3Config
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from openk2.model.config import get_preset
from openk2.model.layers.rope import (
    RotaryEmbedding,
    apply_rope,
    rope_attention_factor,
    rope_inv_freq,
    softmax_scale,
)


def test_k26_softmax_scale_and_attention_factor() -> None:
    config = get_preset("kimi-k2.6")
    assert softmax_scale(config) == pytest.approx(0.1446796, abs=1e-7)
    assert rope_attention_factor(config) == 1.0
    k2_0711 = config.replace(rope_scaling=dict(config.rope_scaling or {}, factor=32.0))
    assert softmax_scale(k2_0711) == pytest.approx(0.130861, abs=1e-6)
    plain = config.replace(rope_scaling=None)
    assert softmax_scale(plain) == pytest.approx(192**-0.5)


def test_k26_inv_freq_ramps_between_dims_8_and_20() -> None:
    config = get_preset("kimi-k2.6")
    inv = rope_inv_freq(config).double()
    extra = 50000.0 ** (-torch.arange(0, 64, 2, dtype=torch.float64) / 64)
    assert torch.allclose(inv[:8], extra[:8], rtol=1e-6)
    assert torch.allclose(inv[20:], extra[20:] / 64, rtol=1e-6)
    ramp = (torch.arange(8, 20, dtype=torch.float64) - 8) / 12
    blended = extra[8:20] / 64 * ramp + extra[8:20] * (1 - ramp)
    assert torch.allclose(inv[8:20], blended, rtol=1e-6)


@pytest.mark.parametrize("betas", [(32.0, 1.0), (1.0, 1.0)])
def test_inv_freq_matches_transformers(betas: tuple[float, float]) -> None:
    config = get_preset("kimi-k2.6")
    scaling = dict(config.rope_scaling or {}, beta_fast=betas[0], beta_slow=betas[1])
    config = config.replace(rope_scaling=scaling)
    hf = DeepseekV3Config.from_dict(config.to_hf_json())
    expected, factor = ROPE_INIT_FUNCTIONS["yarn"](hf)
    assert factor == 1.0
    assert torch.allclose(rope_inv_freq(config), expected, rtol=1e-6, atol=0)


def test_rotation_is_complex_multiplication_of_interleaved_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, generator=generator)
    angles = torch.randn(3, 4, generator=generator)
    rotated = apply_rope(x, torch.polar(torch.ones_like(angles), angles))
    even, odd = x[:, 0::2], x[:, 1::2]
    cos, sin = angles.cos(), angles.sin()
    expected = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).flatten(-2)
    assert torch.allclose(rotated, expected, atol=1e-6)


def test_rotation_of_strided_slices_with_odd_offsets() -> None:
    x = torch.randn(2, 13)
    rotation = torch.polar(torch.ones(4), torch.randn(4))
    assert torch.equal(apply_rope(x[:, 1:9], rotation), apply_rope(x[:, 1:9].clone(), rotation))


def test_scores_depend_only_on_relative_position() -> None:
    rope = RotaryEmbedding(get_preset("debug"))
    generator = torch.Generator().manual_seed(1)
    q, k = torch.randn(8, generator=generator), torch.randn(8, generator=generator)

    def score(pq: int, pk: int) -> float:
        rotation = rope(torch.tensor([[pq, pk]]))
        return float(apply_rope(q, rotation[0, 0]) @ apply_rope(k, rotation[0, 1]))

    assert score(10, 3) == pytest.approx(score(107, 100), abs=1e-4)
    assert not math.isclose(score(10, 3), score(10, 4), abs_tol=1e-3)


def test_rotation_keeps_bf16_dtype() -> None:
    x = torch.randn(2, 5, 8).bfloat16()
    rotation = RotaryEmbedding(get_preset("debug"))(torch.arange(5).expand(2, 5))
    assert rotation.dtype == torch.complex64
    assert apply_rope(x, rotation).dtype == torch.bfloat16
