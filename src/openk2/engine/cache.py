"""The paged MLA latent cache: one pool of pages per layer, read through per-step block tables.

Every token of every layer stores one latent of C = kv_lora_rank + qk_rope_head_dim values
(576 for K2.6). A page holds `block_size` consecutive tokens of one sequence; a sequence's
block table maps its token positions to pages. `StepCache` implements the model's `LatentCache`
contract for one forward call: it scatters the new latents into their slots and gathers every
row's context back as a dense [B, S, C] tensor with a [B, T, S] mask.

Shape legend: L layers, N slots (num_blocks * block_size), C latent width, B rows, T new tokens
per row, S attendable tokens per row.
"""

from __future__ import annotations

import torch


class PagedLatentCache:
    """Owns the latent memory: kv_LNC[layer] is a flat array of N token slots."""

    def __init__(
        self,
        *,
        num_layers: int,
        num_blocks: int,
        block_size: int,
        latent_dim: int,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.latent_dim = latent_dim
        self.kv_LNC = torch.zeros(
            num_layers, num_blocks * block_size, latent_dim, dtype=dtype, device=device
        )

    @staticmethod
    def bytes_per_token(num_layers: int, latent_dim: int, dtype: torch.dtype) -> int:
        """Cache bytes one token costs across all layers (70,272 for K2.6 in bf16)."""
        return num_layers * latent_dim * torch.empty((), dtype=dtype).element_size()

    @property
    def device(self) -> torch.device:
        return self.kv_LNC.device

    def step(
        self, slots_BT: torch.Tensor, context_BS: torch.Tensor, mask_BTS: torch.Tensor | None
    ) -> StepCache:
        """A `LatentCache` view for one forward call (see `StepCache`)."""
        return StepCache(self, slots_BT, context_BS, mask_BTS)


class StepCache:
    """The `LatentCache` of one forward call over a batch of paged sequences.

    Args:
        slots_BT: [B, T] slot of each new token; -1 for padding (never written).
        context_BS: [B, S] slot of each attendable position of each row (any valid slot where
            the row is shorter than S; the mask hides it).
        mask_BTS: [B, T, S] True where new token t of row b may attend to position s; None
            when every row is plain causal with its T new tokens last among S.
    """

    def __init__(
        self,
        pool: PagedLatentCache,
        slots_BT: torch.Tensor,
        context_BS: torch.Tensor,
        mask_BTS: torch.Tensor | None,
    ) -> None:
        self._pool = pool
        valid = (slots_BT >= 0).flatten()
        # rows of the flattened [B*T, C] latents that get written (None: all; decode steps)
        self._write_rows = None if bool(valid.all()) else valid.nonzero().squeeze(1)
        self._write_slots = slots_BT.flatten()[valid]
        self._context_flat = context_BS.reshape(-1)
        self._shape_BS = context_BS.shape
        self._mask_BTS = mask_BTS

    def update(
        self, layer_idx: int, latent_BTC: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Write this step's latents of `layer_idx`, return every row's context and the mask."""
        kv_NC = self._pool.kv_LNC[layer_idx]
        new_XC = latent_BTC.reshape(-1, latent_BTC.shape[-1])
        if self._write_rows is not None:
            new_XC = new_XC.index_select(0, self._write_rows)
        kv_NC.index_copy_(0, self._write_slots, new_XC.to(kv_NC.dtype))
        B, S = self._shape_BS
        latent_BSC = kv_NC.index_select(0, self._context_flat).view(B, S, -1)
        return latent_BSC.to(latent_BTC.dtype), self._mask_BTS
