"""MoonViT-3D as a whole (checkpoint prefix `vision_tower.`): pixels -> merged patch groups.

Input: `pixels` [P, 3, ps, ps] (items packed, frame-major, rows then columns) and `grid_thw`,
one (t, h, w) per item in patches. Output: [N, kh*kw, D] after `sd2_tpool`, N = the sum of the
items' (h/kh)(w/kw); the projector (`projector.py`) maps it to language-model tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from openk2.model.vision.config import VisionConfig
from openk2.model.vision.encoder import VisionEncoder, cu_seqlens
from openk2.model.vision.merge import sd2_tpool
from openk2.model.vision.patch_embed import DividedFixedPosEmb, PatchEmbed
from openk2.model.vision.rope2d import rope2d_angles, rope2d_tables

GridTHW = Sequence[Sequence[int]] | torch.Tensor
"""Per item (t, h, w) in patches: a list of triples or an [items, 3] integer tensor."""


def grid_list(grid_thw: GridTHW) -> list[tuple[int, int, int]]:
    """`grid_thw` as checked Python triples."""
    rows = grid_thw.tolist() if isinstance(grid_thw, torch.Tensor) else grid_thw
    out = []
    for row in rows:
        t, h, w = (int(v) for v in row)
        if min(t, h, w) < 1:
            raise ValueError(f"grid_thw entries must be positive, got {(t, h, w)}")
        out.append((t, h, w))
    if not out:
        raise ValueError("grid_thw is empty: no media items")
    return out


class MoonViT3d(nn.Module):
    """Patch embed, 2-D RoPE encoder, final LayerNorm, temporal pooling + 2x2 grouping."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.encoder = VisionEncoder(config)

    def forward(self, pixels_P3SS: torch.Tensor, grid_thw: GridTHW) -> torch.Tensor:
        grid = grid_list(grid_thw)
        bounds = cu_seqlens(grid)
        if pixels_P3SS.shape[0] != bounds[-1]:
            raise ValueError(
                f"grid_thw covers {bounds[-1]} patches, pixels has {pixels_P3SS.shape[0]}"
            )
        x_PD = self.patch_embed(pixels_P3SS, grid)
        rope = rope2d_tables(rope2d_angles(grid, self.config.head_dim, x_PD.device))
        x_PD = self.encoder(x_PD, rope, bounds)
        kernel = self.config.merge_kernel_size
        return sd2_tpool(x_PD, grid, (kernel[0], kernel[1]))

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Initialise every tensor (after `to_empty`).

        - `patch_embed.proj.weight`, every block's `wqkv`/`wo`/`mlp.fc0`/`mlp.fc1` weight:
          N(0, 0.02); all their biases: 0
        - `patch_embed.pos_emb.weight`: N(0, 0.02); the time table: recomputed sin-cos
        - every LayerNorm (`norm0`, `norm1`, `final_layernorm`): weight 1, bias 0
        """
        init_vision_modules(self, generator)


def init_vision_modules(root: nn.Module, generator: torch.Generator | None) -> None:
    """Shared init rule of the tower and the projector (see `MoonViT3d.init_weights`)."""
    for module in root.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            nn.init.normal_(module.weight, std=0.02, generator=generator)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, DividedFixedPosEmb):
            module.init_weights(generator)
