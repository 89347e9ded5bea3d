"""ContiguousLatentCache stores exactly the latents it is given and guards its bounds."""

from __future__ import annotations

import pytest
import torch

from openk2.model import ContiguousLatentCache, build_model, get_preset


def test_stores_latents_per_layer_and_returns_causal_views() -> None:
    cache = ContiguousLatentCache(2, 3, 8, 5)
    first = torch.randn(3, 4, 5)
    seen, mask = cache.update(0, first)
    assert mask is None and torch.equal(seen, first)
    assert cache.seq_len == 4
    second = torch.randn(3, 1, 5)
    seen, _ = cache.update(0, second)
    assert torch.equal(seen, torch.cat([first, second], dim=1))
    assert cache.update(1, first)[0].shape == (3, 4, 5)


def test_model_cache_holds_kv_lora_rank_plus_rope_dims_per_token() -> None:
    config = get_preset("debug")
    model = build_model(config)
    cache = model.new_cache(2, 32)
    assert cache.latents_LBSC.shape == (3, 2, 32, 32 + 8)
    with torch.no_grad():
        model(torch.ones(2, 5, dtype=torch.long), cache=cache)
    assert cache.seq_len == 5
    layer0 = model.model.layers[0]
    x = model.model.embed_tokens(torch.ones(2, 5, dtype=torch.long))
    rotation = model.model.rotary_emb(torch.arange(5).expand(2, 5))
    with torch.no_grad():
        attn = layer0.self_attn
        expected = attn._latents(attn._project(layer0.input_layernorm(x))[1], rotation)
    assert torch.allclose(cache.latents_LBSC[0, :, :5], expected)


def test_bounds_and_shapes_are_checked() -> None:
    cache = ContiguousLatentCache(1, 2, 4, 3)
    with pytest.raises(ValueError, match="full"):
        cache.update(0, torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"\[2, T, 3\]"):
        cache.update(0, torch.zeros(1, 1, 3))
    with pytest.raises(IndexError):
        cache.update(1, torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="max_len"):
        ContiguousLatentCache(1, 1, 0, 3)
    assert cache.seq_len == 0


def test_crop_and_reset() -> None:
    cache = ContiguousLatentCache(1, 1, 6, 2)
    cache.update(0, torch.arange(8.0).view(1, 4, 2))
    cache.crop(2)
    assert cache.seq_len == 2
    seen, _ = cache.update(0, torch.full((1, 1, 2), -1.0))
    assert seen[0, :2].flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert seen[0, 2].tolist() == [-1.0, -1.0]
    with pytest.raises(ValueError, match="crop"):
        cache.crop(5)
    cache.reset()
    assert cache.seq_len == 0
