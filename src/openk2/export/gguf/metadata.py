"""The `deepseek2.*` hyperparameters llama.cpp reads, from openk2's `ModelConfig`.

MLA is stored the way llama.cpp runs it: as multi-query attention over the latent, so the
"KV head" count is 1, `key_length` is kv_lora_rank + rope dims and `value_length` is
kv_lora_rank, while `key_length_mla` / `value_length_mla` keep the per-head widths that the
decompressed (prefill) path uses. The YaRN attention correction is `rope.scaling.yarn_log_
multiplier` = 0.1 * mscale_all_dim, llama.cpp's form of DeepSeek's mscale.
"""

from __future__ import annotations

import gguf

from openk2.model.config import ModelConfig


class UnsupportedConfig(ValueError):
    """A config that llama.cpp's deepseek2 graph cannot run as openk2 does."""


def check_supported(config: ModelConfig) -> None:
    """Refuse configs whose layout llama.cpp has no key for."""
    if config.moe_layer_freq != 1:
        raise UnsupportedConfig(f"moe_layer_freq={config.moe_layer_freq}: llama.cpp's deepseek2 "
                                "makes every layer after the dense prefix MoE")
    if config.tie_word_embeddings:
        raise UnsupportedConfig("tie_word_embeddings=True: the K2 family has a separate lm_head")


def write_hparams(writer: gguf.GGUFWriter, config: ModelConfig, name: str) -> None:
    """All architecture keys; the tokenizer keys are written separately."""
    writer.add_name(name)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_vocab_size(config.vocab_size)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    _write_attention(writer, config)
    _write_experts(writer, config)
    _write_rope(writer, config)


def _write_attention(writer: gguf.GGUFWriter, config: ModelConfig) -> None:
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(1)
    if config.q_lora_rank is not None:
        writer.add_q_lora_rank(config.q_lora_rank)
    writer.add_kv_lora_rank(config.kv_lora_rank)
    writer.add_key_length(config.kv_lora_rank + config.qk_rope_head_dim)
    writer.add_value_length(config.kv_lora_rank)
    writer.add_key_length_mla(config.qk_head_dim)
    writer.add_value_length_mla(config.v_head_dim)


def _write_experts(writer: gguf.GGUFWriter, config: ModelConfig) -> None:
    writer.add_leading_dense_block_count(config.first_k_dense_replace)
    writer.add_expert_count(config.n_routed_experts)
    writer.add_expert_used_count(config.num_experts_per_tok)
    writer.add_expert_shared_count(config.n_shared_experts)
    writer.add_expert_feed_forward_length(config.moe_intermediate_size)
    writer.add_expert_weights_scale(config.routed_scaling_factor)
    writer.add_expert_weights_norm(config.norm_topk_prob)
    writer.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    writer.add_expert_group_count(config.n_group)
    writer.add_expert_group_used_count(config.topk_group)


def _write_rope(writer: gguf.GGUFWriter, config: ModelConfig) -> None:
    writer.add_rope_dimension_count(config.qk_rope_head_dim)
    writer.add_rope_freq_base(config.rope_theta)
    scaling = config.rope_scaling
    if scaling is None or scaling.get("type") != "yarn":
        return
    writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    writer.add_rope_scaling_factor(float(scaling["factor"]))
    writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
    writer.add_rope_scaling_yarn_log_mul(0.1 * float(scaling.get("mscale_all_dim", 0.0) or 0.0))
    writer.add_rope_scaling_yarn_beta_fast(float(scaling.get("beta_fast", 32.0)))
    writer.add_rope_scaling_yarn_beta_slow(float(scaling.get("beta_slow", 1.0)))
