"""Analytic parameter counts equal the built model's and reproduce K2.6's 1.03T / 32B."""

from __future__ import annotations

import pytest
import torch

from openk2.model import KimiK2ForCausalLM, ModelConfig, get_preset
from openk2.model.params import (
    attention_params,
    count_parameters,
    latent_cache_bytes_per_token,
    total_and_active,
)


@pytest.mark.parametrize(
    "config",
    [get_preset("debug"), get_preset("small"), get_preset("debug").replace(q_lora_rank=None)],
)
def test_totals_equal_the_built_model(config: ModelConfig) -> None:
    with torch.device("meta"):
        model = KimiK2ForCausalLM(config)
    total, _ = total_and_active(config)
    assert total == sum(p.numel() for p in model.parameters())
    attn = sum(p.numel() for p in model.model.layers[0].self_attn.parameters())
    assert attn == attention_params(config)


def test_kimi_k26_counts_match_the_spec() -> None:
    config = get_preset("kimi-k2.6")
    total, active = total_and_active(config)
    assert round(total / 1e12, 2) == 1.03
    assert 31.5e9 < active < 32.5e9
    by_name = {c.name: c for c in count_parameters(config)}
    assert round(attention_params(config) / 1e6, 2) == 101.12
    assert by_name["routed experts"].active * 48 == by_name["routed experts"].total
    assert latent_cache_bytes_per_token(config) == 70_272
