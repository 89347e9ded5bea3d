"""Parameter counts per component, total and active per token, computed from the config alone.

Nothing is built, so the full 1T model counts instantly. "Active" is what one token reads: all
attention and dense weights, the router, the shared experts, `num_experts_per_tok` of the
routed experts, the `lm_head`, and one embedding row. Counts are of `parameters()`; the fp32
router bias buffers (n_routed_experts per MoE layer) are not parameters and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from openk2.model.config import ModelConfig


@dataclass(frozen=True, slots=True)
class ComponentCount:
    """Parameters of one component summed over the whole model."""

    name: str
    """Component label, e.g. `routed experts`."""
    total: int
    """Parameters stored."""
    active: int
    """Parameters read per token."""


def attention_params(config: ModelConfig) -> int:
    """One MLA block: projections plus the q_a/kv_a norm gains."""
    d, h = config.hidden_size, config.num_attention_heads
    if config.q_lora_rank is None:
        query = d * h * config.qk_head_dim
    else:
        rank = config.q_lora_rank
        query = d * rank + rank + rank * h * config.qk_head_dim
    kv = d * config.latent_dim + config.kv_lora_rank
    kv += config.kv_lora_rank * h * (config.qk_nope_head_dim + config.v_head_dim)
    return query + kv + h * config.v_head_dim * d


def count_parameters(config: ModelConfig) -> list[ComponentCount]:
    """Per-component totals; `sum(c.total ...)` equals the built model's parameter count."""
    d, vocab, layers = config.hidden_size, config.vocab_size, config.num_hidden_layers
    moe_layers = config.num_moe_layers
    expert = 3 * d * config.moe_intermediate_size
    routed_total = moe_layers * config.n_routed_experts * expert
    routed_active = moe_layers * config.num_experts_per_tok * expert
    attention = layers * attention_params(config)
    dense = (layers - moe_layers) * 3 * d * config.intermediate_size
    shared = moe_layers * config.n_shared_experts * expert
    router = moe_layers * config.n_routed_experts * d
    norms = (2 * layers + 1) * d
    return [
        ComponentCount("embedding", vocab * d, d),
        ComponentCount("attention (MLA)", attention, attention),
        ComponentCount("dense FFN", dense, dense),
        ComponentCount("router", router, router),
        ComponentCount("shared experts", shared, shared),
        ComponentCount("routed experts", routed_total, routed_active),
        ComponentCount("norms", norms, norms),
        ComponentCount("lm_head", vocab * d, vocab * d),
    ]


def total_and_active(config: ModelConfig) -> tuple[int, int]:
    """(total, active) parameter counts of the whole model."""
    counts = count_parameters(config)
    return sum(c.total for c in counts), sum(c.active for c in counts)


def latent_cache_bytes_per_token(config: ModelConfig, bytes_per_value: int = 2) -> int:
    """Latent KV cache per token over all layers (70,272 B for K2.6 in bf16)."""
    return config.num_hidden_layers * config.latent_dim * bytes_per_value
