"""The latent KV cache contract between MLA layers and whoever owns the memory.

MLA caches one latent vector per token and layer: the normalised `c_kv` (kv_lora_rank values)
followed by the rotated shared rope key `k_pe` (qk_rope_head_dim values), 576 values for K2.6.
The model never owns cache memory itself: `generate` passes a contiguous cache, the engine passes
a paged one. Both implement `LatentCache`.

Shape legend: B batch, T new tokens per row, S attendable tokens per row, C latent width.
"""

from __future__ import annotations

from typing import Protocol

import torch


class LatentCache(Protocol):
    """Storage for per-layer MLA latents that an attention layer writes into and reads back."""

    def update(
        self, layer_idx: int, latent_BTC: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Store this step's latents for `layer_idx` and return what the queries may attend to.

        Args:
            layer_idx: index of the decoder layer calling.
            latent_BTC: [B, T, C] latents of the T new tokens of each row (c_kv after
                kv_a_layernorm, then k_pe after RoPE).

        Returns:
            latent_BSC: [B, S, C] every latent each row may attend to (its past and these T).
            mask_BTS: [B, T, S] bool, True where query t of row b may attend to slot s; None
                means plain causal attention with the T new tokens last in S.
        """
        ...
