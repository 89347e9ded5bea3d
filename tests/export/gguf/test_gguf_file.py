"""The exported GGUF read back with gguf-py's reader: tensors, shapes, types, values, keys."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch

from openk2.embedded import model_dir
from openk2.model.config import load_config
from openk2.model.weights import load_state_dict

Q = gguf.GGMLQuantizationType
CONFIG = load_config(model_dir())
STATE = load_state_dict(model_dir(), dtype=torch.float32)


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """GGUF name -> torch-order shape, derived from the config alone."""
    c = CONFIG
    heads, d = c.num_attention_heads, c.hidden_size
    out = {"token_embd.weight": (c.vocab_size, d), "output.weight": (c.vocab_size, d),
           "output_norm.weight": (d,)}
    for i in range(c.num_hidden_layers):
        b = f"blk.{i}."
        out |= {b + "attn_norm.weight": (d,), b + "ffn_norm.weight": (d,),
                b + "attn_q_a.weight": (c.q_lora_rank, d),
                b + "attn_q_a_norm.weight": (c.q_lora_rank,),
                b + "attn_q_b.weight": (heads * c.qk_head_dim, c.q_lora_rank),
                b + "attn_kv_a_mqa.weight": (c.latent_dim, d),
                b + "attn_kv_a_norm.weight": (c.kv_lora_rank,),
                b + "attn_k_b.weight": (heads, c.kv_lora_rank, c.qk_nope_head_dim),
                b + "attn_v_b.weight": (heads, c.v_head_dim, c.kv_lora_rank),
                b + "attn_output.weight": (d, heads * c.v_head_dim)}
        out |= _ffn_shapes(b, c.is_moe_layer(i))
    return out


def _ffn_shapes(b: str, moe: bool) -> dict[str, tuple[int, ...]]:
    c, d = CONFIG, CONFIG.hidden_size
    if not moe:
        f = c.intermediate_size
        return {b + "ffn_gate.weight": (f, d), b + "ffn_up.weight": (f, d),
                b + "ffn_down.weight": (d, f)}
    e, f, s = c.n_routed_experts, c.moe_intermediate_size, c.moe_intermediate_size
    return {b + "ffn_gate_inp.weight": (e, d), b + "exp_probs_b.bias": (e,),
            b + "ffn_gate_exps.weight": (e, f, d), b + "ffn_up_exps.weight": (e, f, d),
            b + "ffn_down_exps.weight": (e, d, f),
            b + "ffn_gate_shexp.weight": (s * c.n_shared_experts, d),
            b + "ffn_up_shexp.weight": (s * c.n_shared_experts, d),
            b + "ffn_down_shexp.weight": (d, s * c.n_shared_experts)}


def _tensors(path) -> dict[str, gguf.ReaderTensor]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def _values(t: gguf.ReaderTensor) -> np.ndarray:
    return gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed(t.shape.tolist())))


@pytest.mark.parametrize("quant", ["f16", "bf16", "q8_0", "q4_0"])
def test_every_tensor_present_with_its_shape(embedded_gguf, quant: str) -> None:
    tensors = _tensors(embedded_gguf(quant))
    expected = _expected_shapes()
    assert set(tensors) == set(expected)
    for name, shape in expected.items():
        assert tuple(reversed(tensors[name].shape.tolist())) == shape, name


@pytest.mark.parametrize(("quant", "weight_type"), [("f32", Q.F32), ("f16", Q.F16),
                                                    ("bf16", Q.BF16), ("q8_0", Q.Q8_0),
                                                    ("q4_0", Q.Q4_0)])
def test_tensor_types_follow_the_quant(embedded_gguf, quant: str, weight_type: Q) -> None:
    tensors = _tensors(embedded_gguf(quant))
    for name, t in tensors.items():
        if len(t.shape) == 1 or name.endswith("ffn_gate_inp.weight"):
            assert t.tensor_type == Q.F32, name
        elif quant == "q4_0" and name == "output.weight":
            assert t.tensor_type == Q.Q8_0
        else:
            assert t.tensor_type == weight_type, name


@pytest.mark.parametrize("quant", ["f32", "f16", "bf16"])
def test_float_values_match_the_checkpoint(embedded_gguf, quant: str) -> None:
    """f32 and bf16 are exact; f16 differs only where bf16 values fall below f16's normal range."""
    tensors = _tensors(embedded_gguf(quant))
    exact = quant in ("f32", "bf16")
    tolerance = {"atol": 0.0, "rtol": 0.0} if exact else {"atol": 6e-8, "rtol": 1e-3}
    pairs = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
             "blk.2.exp_probs_b.bias": "model.layers.2.mlp.gate.e_score_correction_bias",
             "blk.1.attn_q_b.weight": "model.layers.1.self_attn.q_b_proj.weight"}
    for gguf_name, name in pairs.items():
        np.testing.assert_allclose(_values(tensors[gguf_name]), STATE[name].numpy(), **tolerance)


def test_experts_are_stacked_in_order(embedded_gguf) -> None:
    tensors = _tensors(embedded_gguf("bf16"))
    for proj in ("gate", "up", "down"):
        stacked = _values(tensors[f"blk.3.ffn_{proj}_exps.weight"])
        for e in range(CONFIG.n_routed_experts):
            original = STATE[f"model.layers.3.mlp.experts.{e}.{proj}_proj.weight"].numpy()
            np.testing.assert_array_equal(stacked[e], original)


def test_k_b_and_v_b_rebuild_kv_b_proj(embedded_gguf) -> None:
    """Per head, kv_b rows are [k_nope; v]: k_b^T and v_b stacked give kv_b_proj back."""
    tensors = _tensors(embedded_gguf("bf16"))
    k_b = _values(tensors["blk.1.attn_k_b.weight"])
    v_b = _values(tensors["blk.1.attn_v_b.weight"])
    rebuilt = np.concatenate([k_b.transpose(0, 2, 1), v_b], axis=1).reshape(-1, k_b.shape[1])
    np.testing.assert_array_equal(rebuilt, STATE["model.layers.1.self_attn.kv_b_proj.weight"])


@pytest.mark.parametrize(("quant", "bound"), [("q8_0", 0.5 / 127), ("q4_0", 1 / 8)])
def test_quantized_weights_within_rounding_of_the_originals(embedded_gguf, quant, bound) -> None:
    """Per 32-value block, |error| <= bound * block max: half a step for Q8_0's 127 levels; a
    whole step (1/8) for Q4_0, whose -8..7 range clips the block's extreme by one step; 15%
    slack for the scale itself being stored as float16."""
    tensors = _tensors(embedded_gguf(quant))
    for gguf_name, name in [("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight"),
                            ("blk.2.attn_output.weight", "model.layers.2.self_attn.o_proj.weight"),
                            ("token_embd.weight", "model.embed_tokens.weight")]:
        original = STATE[name].numpy()
        error = np.abs(_values(tensors[gguf_name]) - original).reshape(-1, 32)
        step = np.abs(original).reshape(-1, 32).max(axis=1, keepdims=True) * bound
        assert (error <= step * 1.15 + 1e-7).all(), gguf_name
        assert error.mean() > 0, "a quantized tensor cannot be exact"


def test_hyperparameters(embedded_gguf) -> None:
    fields = gguf.GGUFReader(embedded_gguf("q8_0")).fields
    value = {name: f.contents() for name, f in fields.items()}
    c = CONFIG
    assert value["general.architecture"] == "deepseek2"
    assert value["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    expected = {"block_count": c.num_hidden_layers, "embedding_length": c.hidden_size,
                "feed_forward_length": c.intermediate_size, "attention.head_count_kv": 1,
                "attention.head_count": c.num_attention_heads,
                "attention.kv_lora_rank": c.kv_lora_rank, "attention.q_lora_rank": c.q_lora_rank,
                "attention.key_length": c.kv_lora_rank + c.qk_rope_head_dim,
                "attention.value_length": c.kv_lora_rank,
                "attention.key_length_mla": c.qk_nope_head_dim + c.qk_rope_head_dim,
                "attention.value_length_mla": c.v_head_dim,
                "leading_dense_block_count": c.first_k_dense_replace,
                "expert_count": c.n_routed_experts, "expert_used_count": c.num_experts_per_tok,
                "expert_shared_count": c.n_shared_experts,
                "expert_feed_forward_length": c.moe_intermediate_size,
                "expert_gating_func": int(gguf.ExpertGatingFuncType.SIGMOID),
                "expert_weights_norm": True, "rope.dimension_count": c.qk_rope_head_dim,
                "rope.scaling.type": "yarn",
                "rope.scaling.original_context_length":
                    c.rope_scaling["original_max_position_embeddings"]}
    for key, want in expected.items():
        assert value[f"deepseek2.{key}"] == want, key
    assert value["deepseek2.expert_weights_scale"] == pytest.approx(c.routed_scaling_factor)
    assert value["deepseek2.rope.freq_base"] == pytest.approx(c.rope_theta)
    assert value["deepseek2.rope.scaling.factor"] == pytest.approx(c.rope_scaling["factor"])
    assert value["deepseek2.rope.scaling.yarn_log_multiplier"] == pytest.approx(
        0.1 * c.rope_scaling["mscale_all_dim"])


def test_q4_k_m_through_llama_cpp(embedded_gguf, monkeypatch: pytest.MonkeyPatch) -> None:
    """With llama-cpp-python installed, llama.cpp's own quantizer writes the Q4_K_M file."""
    pytest.importorskip("llama_cpp")
    monkeypatch.setenv("PATH", "/nonexistent")  # the binding, not a llama-quantize program
    monkeypatch.delenv("OPENK2_LLAMA_QUANTIZE", raising=False)
    reader = gguf.GGUFReader(embedded_gguf("q4_k_m"))
    assert reader.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert set(types) == set(_expected_shapes())
    assert types["blk.0.ffn_gate.weight"] == Q.Q4_K  # 256-wide rows hold whole K-blocks
    assert types["blk.1.attn_norm.weight"] == Q.F32
