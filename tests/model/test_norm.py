"""RMSNorm math, dtype order and the 1e-6 eps of the latent norms."""

from __future__ import annotations

import torch

from openk2.model import build_model, get_preset
from openk2.model.layers.norm import LATENT_NORM_EPS, RMSNorm


def test_rms_norm_matches_formula() -> None:
    norm = RMSNorm(6, eps=1e-5)
    norm.weight.data = torch.arange(1.0, 7.0)
    x = torch.randn(4, 6)
    expected = norm.weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    assert torch.allclose(norm(x), expected, atol=1e-6)


def test_weight_is_applied_after_casting_back() -> None:
    norm = RMSNorm(64, eps=1e-6).bfloat16()
    norm.weight.data = (1 + torch.randn(64) * 0.3).bfloat16()
    x = torch.randn(8, 64).bfloat16()
    x32 = x.float()
    normed = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6)).bfloat16()
    assert torch.equal(norm(x), norm.weight * normed)


def test_latent_norms_use_1e6_and_block_norms_use_config_eps() -> None:
    config = get_preset("debug")
    assert config.rms_norm_eps == 1e-5
    layer = build_model(config).model.layers[0]
    assert LATENT_NORM_EPS == 1e-6
    assert layer.self_attn.q_a_layernorm.eps == LATENT_NORM_EPS
    assert layer.self_attn.kv_a_layernorm.eps == LATENT_NORM_EPS
    assert layer.input_layernorm.eps == layer.post_attention_layernorm.eps == 1e-5
