"""What a context of N tokens costs, from the config alone: cache bytes, prefill FLOPs, decode
bytes per token (`openk2 inspect --context N`).

Conventions (those of `spec/long-context-vision.md` §2.2): a multiply-add is 2 FLOPs; causal
prefill scores N (N + 1) / 2 token pairs; the naive MLA form costs 2 (Q + V) FLOPs per pair and
head (score with Q = nope + rope wide keys, weight V wide values), the absorbed form (what the
engine's blocked attention runs) 2 (C + L) with C = kv_lora_rank + rope, L = kv_lora_rank.
Linear layers cost 2 FLOPs per active weight per token (the embedding lookup is free). Decode
reads every active weight once per step (batch 1) plus the whole latent cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from openk2.model.config import ModelConfig
from openk2.model.params import count_parameters, latent_cache_bytes_per_token


@dataclass(frozen=True, slots=True)
class ContextCosts:
    """Costs of one sequence of `tokens` tokens (bf16 weights and cache)."""

    tokens: int
    cache_bytes_per_token: int
    cache_bytes: int
    prefill_linear_flops: int
    prefill_attention_flops_naive: int
    prefill_attention_flops_absorbed: int
    decode_weight_bytes: int
    decode_cache_bytes: int


def context_costs(config: ModelConfig, tokens: int, bytes_per_value: int = 2) -> ContextCosts:
    """Costs of a `tokens`-long context (prefill of all of it, then one decode step)."""
    if tokens < 1:
        raise ValueError(f"tokens must be >= 1, got {tokens}")
    per_token = latent_cache_bytes_per_token(config, bytes_per_value)
    active = sum(c.active for c in count_parameters(config) if c.name != "embedding")
    pairs = tokens * (tokens + 1) // 2
    head_layers = config.num_attention_heads * config.num_hidden_layers
    naive = 2 * (config.qk_head_dim + config.v_head_dim)
    absorbed = 2 * (config.latent_dim + config.kv_lora_rank)
    return ContextCosts(
        tokens=tokens,
        cache_bytes_per_token=per_token,
        cache_bytes=per_token * tokens,
        prefill_linear_flops=2 * active * tokens,
        prefill_attention_flops_naive=naive * head_layers * pairs,
        prefill_attention_flops_absorbed=absorbed * head_layers * pairs,
        decode_weight_bytes=(active + config.hidden_size) * bytes_per_value,
        decode_cache_bytes=per_token * tokens,
    )
