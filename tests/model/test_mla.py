"""MLA: the absorbed latent form equals the naive form; masks and the max-logit hook."""

from __future__ import annotations

import pytest
import torch

from openk2.model import ContiguousLatentCache, build_model, get_preset
from openk2.model.config import ModelConfig
from openk2.model.layers.mla import MLA
from openk2.model.layers.rope import RotaryEmbedding

TOLERANCE = 1e-5


def _mla(config: ModelConfig | None = None) -> tuple[MLA, RotaryEmbedding]:
    config = (config or get_preset("debug")).replace(initializer_range=0.15)
    model = build_model(config, seed=4)
    return model.model.layers[0].self_attn, model.model.rotary_emb


def _run(mla: MLA, rope: RotaryEmbedding, x: torch.Tensor, mode: str, cache=None, offset=0):
    mla.mode = mode  # type: ignore[assignment]
    positions = torch.arange(offset, offset + x.shape[1]).expand(x.shape[0], -1)
    with torch.no_grad():
        return mla(x, rope(positions), cache)


class MaskingCache:
    """A LatentCache that hides chosen slots, the way a paged engine cache returns masks."""

    def __init__(self, hidden: list[tuple[int, int]]) -> None:
        self.hidden = hidden
        self.latents: torch.Tensor | None = None

    def update(self, layer_idx: int, latent_BTC: torch.Tensor):
        self.latents = latent_BTC.clone()
        batch, new, _ = latent_BTC.shape
        mask = torch.ones(new, new, dtype=torch.bool).tril().expand(batch, new, new).clone()
        for row, slot in self.hidden:
            mask[row, slot + 1 :, slot] = False
        return self.latents, mask


@pytest.mark.parametrize("q_lora_rank", [32, None])
def test_absorbed_equals_naive_without_cache(q_lora_rank: int | None) -> None:
    mla, rope = _mla(get_preset("debug").replace(q_lora_rank=q_lora_rank))
    x = torch.randn(2, 9, 64)
    naive = _run(mla, rope, x, "naive")
    absorbed = _run(mla, rope, x, "absorbed")
    assert (naive - absorbed).abs().max().item() < TOLERANCE


def test_absorbed_equals_naive_over_a_cache() -> None:
    mla, rope = _mla()
    x = torch.randn(2, 10, 64)
    outputs = {}
    for mode in ("naive", "absorbed"):
        cache = ContiguousLatentCache(1, 2, 16, 40)
        prefill = _run(mla, rope, x[:, :6], mode, cache)
        chunk = _run(mla, rope, x[:, 6:8], mode, cache, offset=6)
        step = _run(mla, rope, x[:, 8:], mode, cache, offset=8)
        outputs[mode] = torch.cat([prefill, chunk, step], dim=1)
    full = _run(mla, rope, x, "naive")
    assert (outputs["naive"] - full).abs().max().item() < TOLERANCE
    assert (outputs["absorbed"] - full).abs().max().item() < TOLERANCE


def test_cache_masks_are_honoured_by_both_forms() -> None:
    mla, rope = _mla()
    x = torch.randn(2, 6, 64)
    hidden = [(0, 1), (1, 3)]
    results = {}
    for mode in ("naive", "absorbed"):
        results[mode] = _run(mla, rope, x, mode, MaskingCache(hidden))
        changed = x.clone()
        changed[0, 1] += 5.0
        changed[1, 3] += 5.0
        other = _run(mla, rope, changed, mode, MaskingCache(hidden))
        assert torch.allclose(other[0, 2:], results[mode][0, 2:], atol=TOLERANCE)
        assert torch.allclose(other[1, 4:], results[mode][1, 4:], atol=TOLERANCE)
    assert (results["naive"] - results["absorbed"]).abs().max().item() < TOLERANCE
    unmasked = _run(mla, rope, x, "naive")
    assert not torch.allclose(unmasked[0, 2:], results["naive"][0, 2:], atol=1e-3)


def test_auto_mode_picks_absorbed_for_decode_and_naive_for_prefill() -> None:
    with torch.device("meta"):
        mla = MLA(get_preset("kimi-k2.6"), layer_idx=0)
    assert mla._prefers_absorbed(1, 4096)
    assert mla._prefers_absorbed(16, 4096)
    assert not mla._prefers_absorbed(4096, 4096)
    assert not mla._prefers_absorbed(2048, 4096)


def test_max_logit_hook_is_off_by_default_and_matches_manual_scores() -> None:
    mla, rope = _mla()
    x = torch.randn(2, 5, 64)
    _run(mla, rope, x, "naive")
    assert mla.max_logit_H is None
    mla.record_max_logit = True
    reference = _run(mla, rope, x, "naive")
    naive_max = mla.max_logit_H
    mla.record_max_logit = False
    assert torch.allclose(_run(mla, rope, x, "naive"), reference, atol=TOLERANCE)
    mla.record_max_logit = True
    _run(mla, rope, x, "absorbed")
    assert naive_max is not None and naive_max.shape == (4,)
    assert mla.max_logit_H is not None
    assert torch.allclose(mla.max_logit_H, naive_max, atol=1e-4)
    assert torch.allclose(naive_max, _manual_max_logit(mla, rope, x), atol=1e-4)


def _manual_max_logit(mla: MLA, rope: RotaryEmbedding, x: torch.Tensor) -> torch.Tensor:
    """Per-head max of causal q.k * scale from explicit per-head keys."""
    with torch.no_grad():
        rotation = rope(torch.arange(x.shape[1]).expand(x.shape[0], -1))
        q, kv = mla._project(x)
        q_nope, q_pe = mla._queries(q, rotation)
        latent = mla._latents(kv, rotation)
        c_kv, k_pe = latent.split([mla.kv_rank, mla.rope_dim], dim=-1)
        kv = mla.kv_b_proj(c_kv).unflatten(-1, (mla.num_heads, -1))
        k_nope = kv[..., : mla.nope_dim]
        scores = torch.einsum("bthn,bshn->bhts", q_nope, k_nope)
        scores = (scores + torch.einsum("bthr,bsr->bhts", q_pe, k_pe)) * mla.scale
        causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
        return scores.masked_fill(~causal, float("-inf")).amax(dim=(0, 2, 3))


@pytest.mark.parametrize("chunk", [1, 3, 4, 256])
@pytest.mark.parametrize("cached", [0, 2])
def test_chunked_max_logit_equals_dense_masked_max(chunk: int, cached: int) -> None:
    from openk2.model.layers.mla import _causal_mask, _max_logit

    q, k = torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7 + cached, 8)
    mask = _causal_mask(7, 7 + cached, q.device)
    dense = (q @ k.transpose(-1, -2) * 0.5).masked_fill(~mask, float("-inf")).amax(dim=(0, 2, 3))
    assert torch.allclose(_max_logit(q, k, None, 0.5, chunk=chunk), dense)
    assert torch.allclose(_max_logit(q, k, mask, 0.5, chunk=chunk), dense)
