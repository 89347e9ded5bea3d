"""Memory arithmetic: weight bytes by format, latent KV bytes per token, per-GPU fit.

Parameter counts follow the checkpoint's tensors (k26-model.md §4.1): MLA attention, a dense
SwiGLU in the first layers, then routed + shared experts and a router per MoE layer; the
MoonViT tower and projector when present. Byte rules per format (§4.2, §4.3):
- INT4: each routed-expert matrix is int32-packed 4-bit values (1/2 byte per weight), a BF16
  scale per 32 inputs (1/16 byte per weight) and an int32[2] shape; everything else BF16, the
  router's score-correction bias FP32.
- FP8: every attention/dense/expert Linear is 1 byte per weight plus an FP32 scale per
  128x128 block; embeddings, head, norms and router stay BF16.
The latent cache stores kv_lora_rank + qk_rope_head_dim values per token per layer; MLA keeps
it whole on every tensor-parallel rank (performance.md §3.3), so TP does not divide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openk2.deploy.models import ModelShape, VisionShape

GiB = 2**30
KV_DTYPE_BYTES = {"bf16": 2, "fp8": 1}
INT4_BYTES_PER_WEIGHT = 1 / 2 + 2 / 32
"""Packed nibble plus a BF16 scale shared by 32 weights."""
FP8_BLOCK = 128
WORKSPACE_BYTES = 4 * GiB
"""Per-GPU room beyond weights and KV: CUDA graphs, NCCL buffers, kernel scratch (vLLM and
SGLang profile a few GiB of this on K2-size models)."""
ACTIVATION_FACTOR = 8
"""Live hidden-size BF16 buffers per token of a prefill chunk (residual, norms, attention
and MoE inputs/outputs)."""


@dataclass(frozen=True, slots=True)
class ParamCounts:
    """Parameters by role; `routed` is what INT4 quantises and EP shards."""

    attention_per_layer: int
    expert: int
    routed: int
    dense_rest: int
    """Text weights outside the routed experts (attention, dense FFN, shared experts,
    router, norms, embeddings, head)."""
    router_bias: int
    vision: int

    @property
    def total(self) -> int:
        return self.routed + self.dense_rest + self.vision


def count_params(m: ModelShape) -> ParamCounts:
    """Count the checkpoint's parameters from the config (no weights are read)."""
    d = m.hidden_size
    attention = sum(r * c for r, c in attention_matrices(m)) + m.q_lora_rank + m.kv_lora_rank
    expert = 3 * d * m.moe_intermediate_size
    router = m.n_routed_experts * d
    per_moe_layer = m.n_shared_experts * expert + router
    embeddings = m.vocab_size * d * (1 if m.tie_word_embeddings else 2)
    rest = (m.num_hidden_layers * (attention + 2 * d)
            + m.first_k_dense_replace * 3 * d * m.intermediate_size
            + m.moe_layers * per_moe_layer + embeddings + d)
    return ParamCounts(attention_per_layer=attention, expert=expert,
                       routed=m.moe_layers * m.n_routed_experts * expert, dense_rest=rest,
                       router_bias=m.moe_layers * m.n_routed_experts,
                       vision=vision_params(m.vision) if m.vision else 0)


def attention_matrices(m: ModelShape) -> list[tuple[int, int]]:
    """MLA's five Linear weights as (out, in): q_a, q_b, kv_a_with_mqa, kv_b, o."""
    d, heads = m.hidden_size, m.num_attention_heads
    return [(m.q_lora_rank, d),
            (heads * (m.qk_nope_head_dim + m.qk_rope_head_dim), m.q_lora_rank),
            (m.kv_lora_rank + m.qk_rope_head_dim, d),
            (heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank),
            (d, heads * m.v_head_dim)]


def vision_params(v: VisionShape) -> int:
    """MoonViT (patch conv, pos-emb grid, pre-LN blocks, final LN) + PatchMerger projector."""
    h, f = v.hidden, v.intermediate
    patch = 3 * v.patch * v.patch * h + h
    block = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (f * h + f) + (h * f + h)
    merged = v.merge * h
    projector = 2 * h + (merged * merged + merged) + (v.text_hidden * merged + v.text_hidden)
    return patch + v.pos_grid[0] * v.pos_grid[1] * h + v.layers * block + 2 * h + projector


@dataclass(frozen=True, slots=True)
class WeightBytes:
    """Bytes on the GPU (and on disk) split into what expert parallelism shards and the rest."""

    routed: int
    rest: int
    attention: int = 0
    """The MLA projections' share of `rest` (what data-parallel attention replicates)."""

    @property
    def total(self) -> int:
        return self.routed + self.rest


def weight_bytes(m: ModelShape) -> WeightBytes:
    """Checkpoint bytes in the model's own format (`m.weight_format`)."""
    p = count_params(m)
    bf16_rest = 2 * (p.dense_rest - p.router_bias + p.vision) + 4 * p.router_bias
    attention = 2 * m.num_hidden_layers * p.attention_per_layer
    if m.weight_format == "int4":
        matrices = m.moe_layers * m.n_routed_experts * 3
        return WeightBytes(routed=int(p.routed * INT4_BYTES_PER_WEIGHT) + 8 * matrices,
                           rest=bf16_rest, attention=attention)
    if m.weight_format == "fp8":
        return _fp8_bytes(m, p)
    return WeightBytes(routed=2 * p.routed, rest=bf16_rest, attention=attention)


def _fp8_bytes(m: ModelShape, p: ParamCounts) -> WeightBytes:
    """FP8 block format: Linear weights 1 byte + FP32 scale per block; the rest BF16."""
    d, e = m.hidden_size, m.moe_intermediate_size
    expert_scales = 3 * _blocks(e, d)
    routed = p.routed + 4 * expert_scales * m.moe_layers * m.n_routed_experts
    attention = attention_matrices(m)
    linear = m.num_hidden_layers * sum(r * c for r, c in attention) + m.first_k_dense_replace * (
        3 * d * m.intermediate_size) + m.moe_layers * m.n_shared_experts * p.expert
    scales = (m.first_k_dense_replace * 3 * _blocks(m.intermediate_size, d)
              + m.moe_layers * m.n_shared_experts * expert_scales
              + m.num_hidden_layers * sum(_blocks(r, c) for r, c in attention))
    bf16 = p.dense_rest - linear - p.router_bias + p.vision
    attention_bytes = m.num_hidden_layers * sum(r * c + 4 * _blocks(r, c) for r, c in attention)
    return WeightBytes(routed=routed, rest=linear + 4 * scales + 2 * bf16 + 4 * p.router_bias,
                       attention=attention_bytes)


def _blocks(rows: int, cols: int) -> int:
    return math.ceil(rows / FP8_BLOCK) * math.ceil(cols / FP8_BLOCK)


def kv_bytes_per_token(m: ModelShape, kv_dtype: str) -> int:
    """Latent cache bytes per token: (kv_lora_rank + qk_rope_head_dim) x layers x dtype bytes."""
    if kv_dtype not in KV_DTYPE_BYTES:
        raise ValueError(f"KV dtype must be one of {', '.join(KV_DTYPE_BYTES)}, got {kv_dtype!r}")
    per_layer = m.kv_lora_rank + m.qk_rope_head_dim
    return per_layer * m.num_hidden_layers * KV_DTYPE_BYTES[kv_dtype]


LOGIT_ROWS = 256
"""Sequences sampled per step: engines compute logits only at those positions (FP32, the
full vocabulary gathered on every rank)."""


def activation_bytes(m: ModelShape, chunk_tokens: int) -> int:
    """Peak activations of one prefill chunk per GPU, plus one step's logits."""
    hidden = chunk_tokens * m.hidden_size * 2 * ACTIVATION_FACTOR
    return hidden + LOGIT_ROWS * m.vocab_size * 4


@dataclass(frozen=True, slots=True)
class GpuFit:
    """One GPU's budget under a parallel layout; `kv_bytes` < 0 means it does not fit."""

    usable: int
    weights: int
    activations: int
    workspace: int

    @property
    def kv_bytes(self) -> int:
        return self.usable - self.weights - self.activations - self.workspace


def per_gpu_weights(w: WeightBytes, *, tp: int, dp: int, ep: bool,
                    attention_dp: int = 1) -> int:
    """Weight bytes on one GPU: TP shards everything; with EP the routed experts are spread
    over all tp x dp GPUs while the rest stays replicated per data-parallel rank; with
    `attention_dp` ranks inside the TP group (SGLang DP attention) attention is split over
    only tp / attention_dp GPUs."""
    routed = w.routed / (tp * dp) if ep else w.routed / tp
    attention = w.attention / (tp // attention_dp)
    return math.ceil(routed + (w.rest - w.attention) / tp + attention)
