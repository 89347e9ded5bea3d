"""The paged MLA latent cache: one pool of pages per layer, read through per-step block tables.

Every token of every layer stores one latent of C = kv_lora_rank + qk_rope_head_dim values
(576 for K2.6). A page holds `block_size` consecutive tokens of one sequence; a sequence's
block table maps its token positions to pages. `StepCache` implements the model's `LatentCache`
contract for one forward call: it scatters the new latents into their slots and hands every
row's context back as a dense [B, S, C] tensor with a [B, T, S] mask.

That dense context is never a fresh full-length copy per layer: a single row whose slots are
consecutive (a long prompt in fresh pages, the common long-context case) gets a view of the pool
itself, and anything else is gathered into one workspace the pool reuses across layers and steps
(grown by doubling). A fresh [B, S, C] gather per layer per step costs the same at its peak,
but it is an allocation of a new size every step, 61 times per step for K2.6 (288 MiB each at
256K tokens in bf16), and the view skips the copy altogether. (On the debug preset neither
changed the measured RSS: the growth there came from oneDNN, see `model/layers/linear.py`.)

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
        self._workspace_XC = self.kv_LNC.new_empty(0, latent_dim)

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

    def workspace(self, rows: int) -> torch.Tensor:
        """The first `rows` rows of the gather workspace [rows, C] (its content is scratch)."""
        if self._workspace_XC.shape[0] < rows:
            grown = max(rows, 2 * self._workspace_XC.shape[0])
            self._workspace_XC = self.kv_LNC.new_empty(grown, self.latent_dim)
        return self._workspace_XC[:rows]


class StepCache:
    """The `LatentCache` of one forward call over a batch of paged sequences.

    The context `update` returns is a view of the pool or of its workspace: valid until the
    next `update` call (the layer that asked reads it before the next layer runs).

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
        self._first_slot = _consecutive_start(context_BS)

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
        if self._first_slot is not None:
            latent_XC = kv_NC[self._first_slot : self._first_slot + S]
        else:
            latent_XC = self._pool.workspace(B * S)
            torch.index_select(kv_NC, 0, self._context_flat, out=latent_XC)
        return latent_XC.view(B, S, -1).to(latent_BTC.dtype), self._mask_BTS


def _consecutive_start(context_BS: torch.Tensor) -> int | None:
    """The first slot when there is one row and its slots are consecutive, else None."""
    if context_BS.shape[0] != 1:
        return None
    row = context_BS[0]
    first = int(row[0])
    if int(row[-1]) - first != row.numel() - 1:
        return None
    return first if bool((row.diff() == 1).all()) else None
