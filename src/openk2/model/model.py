"""Assembly of the K2 / K2.6 text model from its components (no math lives here).

`model.state_dict()` keys are exactly the K2 / K2-Thinking HF checkpoint keys
(`model.embed_tokens.weight`, `model.layers.{i}.self_attn.q_a_proj.weight`, ...,
`model.layers.{i}.mlp.experts.{e}.down_proj.weight`, `model.norm.weight`, `lm_head.weight`).

Build cheaply on the meta device, then materialise and initialise:

    model = build_model(get_preset("tiny"), dtype=torch.float32, seed=0)

or, for loading a checkpoint, `with torch.device("meta"): KimiK2ForCausalLM(cfg)` followed by
`to_empty(device=...)` and the loader (which must then call nothing else: rope frequencies are
recomputed from the config, never stored).
"""

from __future__ import annotations

import torch
from torch import nn

from openk2.model.cache import ContiguousLatentCache, LatentCache
from openk2.model.config import ModelConfig
from openk2.model.layers.decode_tables import (
    DECODE_FORMATS,
    DecodeFormat,
    DerivedTable,
    is_plain_linear,
    table_linear,
)
from openk2.model.layers.linear import PackedGemm, use_packed
from openk2.model.layers.mla import MLA
from openk2.model.layers.mlp import MLP
from openk2.model.layers.moe import MoE, MoEGate
from openk2.model.layers.norm import RMSNorm
from openk2.model.layers.rope import RotaryEmbedding


class DecoderLayer(nn.Module):
    """Pre-norm block: h = x + Attn(norm(x)); y = h + FFN(norm(h))."""

    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = MLA(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp: MLP | MoE = (
            MoE(config)
            if config.is_moe_layer(layer_idx)
            else MLP(config.hidden_size, config.intermediate_size, decode_tables=True)
        )

    def forward(
        self,
        x_BTD: torch.Tensor,
        rotation_BTP: torch.Tensor,
        cache: LatentCache | None,
    ) -> torch.Tensor:
        h = x_BTD + self.self_attn(self.input_layernorm(x_BTD), rotation_BTP, cache)
        return h + self.mlp(self.post_attention_layernorm(h))


class KimiK2Model(nn.Module):
    """Embedding, decoder stack and final norm (the HF `model.` prefix)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DecoderLayer(config, i) for i in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final-normed hidden states [B, T, D]."""
        x_BTD = _embed(self.embed_tokens, input_ids, inputs_embeds)
        positions_BT = _positions(positions, cache, x_BTD)
        rotation_BTP = self.rotary_emb(positions_BT)
        for layer in self.layers:
            x_BTD = layer(x_BTD, rotation_BTP, cache)
        return self.norm(x_BTD)


class KimiK2ForCausalLM(nn.Module):
    """The text model with its untied `lm_head`; returns logits, never samples."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = KimiK2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._head_table = DerivedTable()
        self.decode_format: DecodeFormat = "native"
        self.packed_gemms = False
        """Batched inference GEMMs on packed weights (`layers/linear.py`)."""
        self._packed_head = PackedGemm()

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        *,
        inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """Logits [B, T', V] in the model dtype.

        Args:
            input_ids: [B, T] token ids (None when `inputs_embeds` is given).
            positions: [B, T] absolute positions; default `arange(T)`, shifted by the cache's
                `seq_len` when the cache tracks one.
            cache: latent cache to append to and attend over (see `LatentCache`).
            inputs_embeds: [B, T, D] embeddings used instead of `input_ids` (e.g. with images).
            logits_to_keep: k > 0 computes logits for the last k positions only; 0 for all.
        """
        if logits_to_keep < 0:
            raise ValueError(f"logits_to_keep must be >= 0, got {logits_to_keep}")
        hidden_BTD = self.model(input_ids, positions, cache, inputs_embeds=inputs_embeds)
        if logits_to_keep:
            hidden_BTD = hidden_BTD[:, -logits_to_keep:]
        return self._head(hidden_BTD)

    def _head(self, hidden_BTD: torch.Tensor) -> torch.Tensor:
        """lm_head; without autograd on a derived copy of its weight: the decode table for one
        token, the packed GEMM for several rows (when enabled)."""
        if torch.is_grad_enabled() or not is_plain_linear(self.lm_head):
            return self.lm_head(hidden_BTD)  # also a quantized head (`quantize.py`)
        weight = self.lm_head.weight
        if hidden_BTD.numel() == hidden_BTD.shape[-1]:
            return table_linear(self._head_table, hidden_BTD, (weight,), self.decode_format)
        if use_packed(self.packed_gemms, hidden_BTD, weight):
            return self._packed_head(hidden_BTD, weight)
        return self.lm_head(hidden_BTD)

    def packed_gemm_weights(self) -> list[tuple[PackedGemm, tuple[torch.Tensor, ...]]]:
        """The packed `lm_head` GEMM with its weight (see `enable_packed_gemms`); none for a
        hooked or quantized head."""
        if not is_plain_linear(self.lm_head):
            return []
        return [(self._packed_head, (self.lm_head.weight,))]

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """Initialise every tensor (after `to_empty`); std = config.initializer_range.

        - `model.embed_tokens.weight`, `lm_head.weight`: N(0, std)
        - attention `q_a_proj`/`q_b_proj` (or `q_proj`), `kv_a_proj_with_mqa`, `kv_b_proj`,
          `o_proj`: N(0, std)
        - dense, shared-expert and routed-expert `gate_proj`/`up_proj`/`down_proj`: N(0, std)
        - router `mlp.gate.weight`: N(0, std); `mlp.gate.e_score_correction_bias`: 0 (fp32)
        - every RMSNorm weight (input, post-attention, q_a, kv_a, final): 1
        """
        std = self.config.initializer_range
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.lm_head.weight.device).manual_seed(seed)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=std, generator=generator)
            elif isinstance(module, RMSNorm):
                module.init_weights()
            elif isinstance(module, MoEGate):
                module.init_weights(std, generator)

    def set_decode_format(self, fmt: DecodeFormat) -> None:
        """Weight format of the single-token decode tables (see `layers/decode_tables.py`).

        "native" (default): the weights' own dtype. "int8" (CPU only): 8-bit rows with fp32
        scale and offset, a quarter of fp32's bytes per token at ~0.7% relative error per
        product; an opt-in serving format, never used by prefill or training.
        """
        if fmt not in DECODE_FORMATS:
            raise ValueError(f"decode format must be one of {DECODE_FORMATS}, got {fmt!r}")
        if fmt == "int8" and self.anchor_weight.device.type != "cpu":
            raise ValueError("the int8 decode format runs on the CPU only")
        for module in self.modules():
            if hasattr(module, "decode_format"):
                module.decode_format = fmt

    @property
    def anchor_weight(self) -> torch.Tensor:
        """The token embedding: the tensor whose dtype and device are the model's (it is never
        quantized, where `lm_head` may be a `QuantLinear` without a float weight)."""
        return self.model.embed_tokens.weight

    def new_cache(self, batch_size: int, max_len: int) -> ContiguousLatentCache:
        """An empty contiguous latent cache matching this model's layers, dtype and device."""
        weight = self.anchor_weight
        return ContiguousLatentCache(
            self.config.num_hidden_layers,
            batch_size,
            max_len,
            self.config.latent_dim,
            dtype=weight.dtype,
            device=weight.device,
        )


def build_model(
    config: ModelConfig,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int | None = 0,
) -> KimiK2ForCausalLM:
    """Build on the meta device, materialise on `device` in `dtype`, then `init_weights(seed)`."""
    with torch.device("meta"):
        model = KimiK2ForCausalLM(config)
    model = model.to(dtype=dtype).to_empty(device=device)
    model.init_weights(seed)
    return model


def _embed(
    table: nn.Embedding, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
) -> torch.Tensor:
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids and inputs_embeds")
    if inputs_embeds is not None:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != table.embedding_dim:
            raise ValueError(
                f"inputs_embeds must be [B, T, {table.embedding_dim}], "
                f"got {list(inputs_embeds.shape)}"
            )
        return inputs_embeds
    assert input_ids is not None
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, T], got {list(input_ids.shape)}")
    return table(input_ids)


def _positions(
    positions: torch.Tensor | None, cache: LatentCache | None, x_BTD: torch.Tensor
) -> torch.Tensor:
    """Explicit positions, or arange(T) after whatever the cache already holds."""
    batch, length = x_BTD.shape[:2]
    if positions is not None:
        if positions.shape != (batch, length):
            raise ValueError(f"positions must be [{batch}, {length}], got {list(positions.shape)}")
        return positions
    offset = 0
    if cache is not None:
        seq_len = getattr(cache, "seq_len", None)
        if not isinstance(seq_len, int):
            raise ValueError("this cache does not track its length: pass positions explicitly")
        offset = seq_len
    return torch.arange(offset, offset + length, device=x_BTD.device).expand(batch, length)
