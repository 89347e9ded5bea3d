"""2-D rotary embedding of MoonViT (`Rope2DPosEmbRepeated(head_dim, 512, 512, theta=1e4)`).

A head of width Dh holds Dh/2 rotation pairs of *adjacent* elements (2j, 2j+1) (interleaved
complex layout, as the checkpoint's `wqkv` rows are ordered). With freq_k = theta^(-4k/Dh),
k = 0..Dh/4-1, pair 2k turns by (column w) * freq_k and pair 2k+1 by (row h) * freq_k. Every
frame of a video chunk reuses the same table: time enters only through the additive time
embedding (`patch_embed.py`).
"""

from __future__ import annotations

import torch

from openk2.model.vision.config import ROPE_MAX_SIDE, ROPE_THETA


def rope2d_angles(
    grid_thw: list[tuple[int, int, int]], head_dim: int, device: torch.device | None = None
) -> torch.Tensor:
    """[P, head_dim/2] float32 rotation angles for the packed patches of `grid_thw`."""
    freq_K = ROPE_THETA ** (-torch.arange(head_dim // 4, dtype=torch.float64) * 4 / head_dim)
    parts = []
    for t, h, w in grid_thw:
        if h > ROPE_MAX_SIDE or w > ROPE_MAX_SIDE:
            raise ValueError(
                f"a media item has at most {ROPE_MAX_SIDE} patches a side, got {h}x{w}"
            )
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        pos_N2 = torch.stack([cols.flatten(), rows.flatten()], dim=1).double()  # (w, h) per pair
        angles_NK2 = pos_N2[:, None, :] * freq_K[None, :, None]
        parts.append(angles_NK2.flatten(1).repeat(t, 1))
    return torch.cat(parts).float().to(device)


def rope2d_tables(angles_PJ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) [P, 1, Dh/2] float32, computed once per forward and shared by every block."""
    return angles_PJ.cos()[:, None], angles_PJ.sin()[:, None]


def apply_rope2d(x_PHd: torch.Tensor, cos_P1J: torch.Tensor, sin_P1J: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs of x [P, ..., Dh] by the angles of `rope2d_tables` (in float32)."""
    pairs = x_PHd.float().unflatten(-1, (-1, 2))
    shape = (cos_P1J.shape[0],) + (1,) * (x_PHd.dim() - 2) + (cos_P1J.shape[-1],)
    cos, sin = cos_P1J.view(shape), sin_P1J.view(shape)
    real, imag = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
    return rotated.flatten(-2).to(x_PHd.dtype)
