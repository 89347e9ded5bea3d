"""Tensor conversion rules that the embedded model does not exercise: half-split RoPE weights,
missing experts and unknown tensors."""

from __future__ import annotations

import pytest
import torch

from openk2.export.gguf.tensors import gguf_tensors
from openk2.model.config import get_preset
from openk2.model.layers.rope import apply_rope

CONFIG = get_preset("debug").replace(rope_interleave=False)


def _rotation(pairs: int) -> torch.Tensor:
    angles = torch.linspace(0.1, 2.0, pairs)
    return torch.polar(torch.ones(pairs), angles)


def test_half_split_rope_rows_are_reordered_to_adjacent_pairs() -> None:
    """Half-split rope on the original rows == adjacent-pair rope (llama.cpp's) on the export."""
    c = CONFIG
    torch.manual_seed(0)
    kv_a = torch.randn(c.latent_dim, c.hidden_size)
    q_b = torch.randn(c.num_attention_heads * c.qk_head_dim, c.q_lora_rank)
    state = [("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", kv_a),
             ("model.layers.0.self_attn.q_b_proj.weight", q_b)]
    out = {name: torch.from_numpy(a) for name, a in gguf_tensors(c, state)}
    rotation = _rotation(c.qk_rope_head_dim // 2)
    x, q_x = torch.randn(c.hidden_size), torch.randn(c.q_lora_rank)
    k_pe = (kv_a @ x)[c.kv_lora_rank:]
    k_pe_gguf = (out["blk.0.attn_kv_a_mqa.weight"] @ x)[c.kv_lora_rank:]
    torch.testing.assert_close(apply_rope(k_pe_gguf, rotation, True),
                               apply_rope(k_pe, rotation, False))
    assert torch.equal((out["blk.0.attn_kv_a_mqa.weight"] @ x)[:c.kv_lora_rank],
                       (kv_a @ x)[:c.kv_lora_rank])
    heads = (c.num_attention_heads, c.qk_head_dim)
    q_pe = (q_b @ q_x).reshape(heads)[:, c.qk_nope_head_dim:]
    q_pe_gguf = (out["blk.0.attn_q_b.weight"] @ q_x).reshape(heads)[:, c.qk_nope_head_dim:]
    torch.testing.assert_close(apply_rope(q_pe_gguf, rotation, True),
                               apply_rope(q_pe, rotation, False))


def test_missing_experts_are_an_error() -> None:
    c = get_preset("debug")
    layer = next(i for i in range(c.num_hidden_layers) if c.is_moe_layer(i))
    state = [(f"model.layers.{layer}.mlp.experts.0.up_proj.weight",
              torch.zeros(c.moe_intermediate_size, c.hidden_size))]
    with pytest.raises(ValueError, match=f"1 of {c.n_routed_experts} routed experts"):
        list(gguf_tensors(c, state))


def test_a_tensor_llama_cpp_has_no_name_for_is_an_error() -> None:
    with pytest.raises(ValueError, match="no llama.cpp deepseek2 counterpart"):
        list(gguf_tensors(get_preset("debug"), [("model.vision_tower.patch.weight",
                                                 torch.zeros(2, 2))]))
