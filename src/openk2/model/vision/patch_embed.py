"""Patch embedding of MoonViT-3D: a 14x14 Conv2d plus the `divided_fixed` position embedding.

Shapes: P patches of one packed batch (all items, frame-major, rows then columns inside a
frame), D hidden width, grid (t, h, w) per item in patches.

The absolute position term is a learnable [H0, W0, D] grid, bicubic-resized to each item's
(h, w) (align_corners False, in the weight's dtype), repeated over the item's t frames; for
t > 1 a fixed sin-cos time table row [sin(f w_k), cos(f w_k)], w_k = 10000^(-2k/D), is added to
frame f. A single image (t = 1) gets no time term, so images and 1-frame videos agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.vision.config import ROPE_THETA, VisionConfig


def sincos_time_table(num_frames: int, dim: int) -> torch.Tensor:
    """[num_frames, dim] float32: row f = [sin(f w_0..), cos(f w_0..)], w_k = 10000^(-2k/dim)."""
    omega = ROPE_THETA ** (-torch.arange(dim // 2, dtype=torch.float64) * 2 / dim)
    angles = torch.arange(num_frames, dtype=torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


class DividedFixedPosEmb(nn.Module):
    """Learnable spatial grid (checkpoint `pos_emb.weight`) + fixed time table (a buffer)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        height, width = config.init_pos_emb_height, config.init_pos_emb_width
        self.weight = nn.Parameter(torch.empty(height, width, config.vt_hidden_size))
        self.num_frames = config.init_pos_emb_time
        self.register_buffer("time_table", torch.empty(self.num_frames, config.vt_hidden_size),
                             persistent=False)  # fmt: skip

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """`weight` ~ N(0, 0.02); the time table is recomputed (never stored)."""
        nn.init.normal_(self.weight, std=0.02, generator=generator)
        self.reset_time_table()

    @torch.no_grad()
    def reset_time_table(self) -> None:
        """Recompute the fixed time table (after `to_empty`; checkpoints never store it)."""
        table = sincos_time_table(self.num_frames, self.weight.shape[-1])
        self.time_table = table.to(device=self.weight.device, dtype=self.weight.dtype)

    def forward(self, x_PD: torch.Tensor, grid_thw: list[tuple[int, int, int]]) -> torch.Tensor:
        parts = [self._item(t, h, w) for t, h, w in grid_thw]
        return x_PD + torch.cat(parts).to(x_PD.dtype)

    def _item(self, t: int, h: int, w: int) -> torch.Tensor:
        """[t*h*w, D] position term of one item."""
        grid_HWD = self.spatial(h, w)
        if t == 1:
            return grid_HWD.flatten(0, 1)
        if t > self.num_frames:
            raise ValueError(f"a video chunk has at most {self.num_frames} frames, got {t}")
        time_TD = self.time_table[:t].to(grid_HWD.dtype)
        return (grid_HWD[None] + time_TD[:, None, None]).flatten(0, 2)

    def spatial(self, h: int, w: int) -> torch.Tensor:
        """[h, w, D] grid: the weight itself at its own size, else its bicubic resize."""
        if (h, w) == tuple(self.weight.shape[:2]):
            return self.weight
        grid_1DHW = self.weight.permute(2, 0, 1)[None]
        resized = F.interpolate(grid_1DHW, size=(h, w), mode="bicubic", align_corners=False)
        return resized[0].permute(1, 2, 0)


class PatchEmbed(nn.Module):
    """Pixel patches [P, 3, ps, ps] -> [P, D] embeddings with absolute positions added."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        size = config.patch_size
        self.proj = nn.Conv2d(3, config.vt_hidden_size, kernel_size=size, stride=size)
        self.pos_emb = DividedFixedPosEmb(config)

    def forward(
        self, pixels_P3SS: torch.Tensor, grid_thw: list[tuple[int, int, int]]
    ) -> torch.Tensor:
        x_PD = self.proj(pixels_P3SS.to(self.proj.weight.dtype)).flatten(1)
        return self.pos_emb(x_PD, grid_thw)
