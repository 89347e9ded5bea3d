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


class ContiguousLatentCache:
    """A `LatentCache` in one preallocated tensor [layers, B, max_len, C]; rows advance together.

    Used by `generate` and tests: every row holds the same number of tokens, so `update` returns
    a view of the first `seq_len + T` slots and no mask (plain causal). It stores exactly
    C = kv_lora_rank + qk_rope_head_dim values per token and layer.
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        max_len: int,
        latent_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, value in (
            ("num_layers", num_layers),
            ("batch_size", batch_size),
            ("max_len", max_len),
            ("latent_dim", latent_dim),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.latents_LBSC = torch.zeros(
            num_layers, batch_size, max_len, latent_dim, dtype=dtype, device=device
        )
        self._lengths = [0] * num_layers

    @property
    def max_len(self) -> int:
        """Token slots per row."""
        return self.latents_LBSC.shape[2]

    @property
    def seq_len(self) -> int:
        """Tokens stored per row by completed forwards (the next token's position)."""
        return self._lengths[0]

    def update(
        self, layer_idx: int, latent_BTC: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Append this step's latents for `layer_idx`; return all of them so far, causal."""
        layers, batch, _, width = self.latents_LBSC.shape
        if not 0 <= layer_idx < layers:
            raise IndexError(f"layer_idx {layer_idx} outside [0, {layers})")
        if latent_BTC.dim() != 3 or latent_BTC.shape[0] != batch or latent_BTC.shape[2] != width:
            raise ValueError(f"latents must be [{batch}, T, {width}], got {list(latent_BTC.shape)}")
        start = self._lengths[layer_idx]
        end = start + latent_BTC.shape[1]
        if end > self.max_len:
            raise ValueError(f"latent cache full: {end} tokens exceed max_len {self.max_len}")
        self.latents_LBSC[layer_idx, :, start:end] = latent_BTC
        self._lengths[layer_idx] = end
        return self.latents_LBSC[layer_idx, :, :end], None

    def crop(self, length: int) -> None:
        """Forget every token from position `length` on (e.g. rejected draft tokens)."""
        if not 0 <= length <= min(self._lengths):
            raise ValueError(f"cannot crop to {length}; layers hold {min(self._lengths)} tokens")
        self._lengths = [length] * len(self._lengths)

    def reset(self) -> None:
        """Empty the cache (memory is kept for reuse)."""
        self.crop(0)
