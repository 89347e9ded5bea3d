"""MoonViT-3D encoder: pre-LN blocks with packed, per-item bidirectional attention.

Legend: P patches of the packed batch, D width, H heads, Dh head width. Items (images or
video chunks) are concatenated along P; `cu_seqlens` marks their bounds and attention never
crosses them (each item attends over all of its t*h*w patches).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.vision.config import LAYER_NORM_EPS, VisionConfig
from openk2.model.vision.rope2d import apply_rope2d


def cu_seqlens(grid_thw: list[tuple[int, int, int]]) -> list[int]:
    """Cumulative patch counts [0, n0, n0+n1, ...] of the packed items."""
    bounds = [0]
    for t, h, w in grid_thw:
        bounds.append(bounds[-1] + t * h * w)
    return bounds


class VisionMLP(nn.Module):
    """fc1(gelu_tanh(fc0(x)))."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.fc0 = nn.Linear(config.vt_hidden_size, config.vt_intermediate_size)
        self.fc1 = nn.Linear(config.vt_intermediate_size, config.vt_hidden_size)

    def forward(self, x_PD: torch.Tensor) -> torch.Tensor:
        return self.fc1(F.gelu(self.fc0(x_PD), approximate="tanh"))


class VisionBlock(nn.Module):
    """x += wo(Attn(norm0(x))); x += mlp(norm1(x)). `wqkv` rows are [q; k; v]."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        width = config.vt_hidden_size
        self.num_heads = config.vt_num_attention_heads
        self.norm0 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.wqkv = nn.Linear(width, 3 * width)
        self.wo = nn.Linear(width, width)
        self.mlp = VisionMLP(config)

    def forward(
        self, x_PD: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bounds: list[int]
    ) -> torch.Tensor:
        x_PD = x_PD + self.wo(self._attention(self.norm0(x_PD), rope, bounds))
        return x_PD + self.mlp(self.norm1(x_PD))

    def _attention(
        self, x_PD: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bounds: list[int]
    ) -> torch.Tensor:
        qkv_P3HDh = self.wqkv(x_PD).unflatten(-1, (3, self.num_heads, -1))
        qk_P2HDh = apply_rope2d(qkv_P3HDh[:, :2], *rope)
        q_PHDh, k_PHDh, v_PHDh = qk_P2HDh[:, 0], qk_P2HDh[:, 1], qkv_P3HDh[:, 2]
        outputs = []
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            # [1, H, n, Dh]: the 4-D layout lets SDPA take its fused (flash) kernel
            q, k, v = (z[start:end].transpose(0, 1)[None] for z in (q_PHDh, k_PHDh, v_PHDh))
            outputs.append(F.scaled_dot_product_attention(q, k, v)[0].transpose(0, 1))
        return torch.cat(outputs).flatten(1)


class VisionEncoder(nn.Module):
    """The block stack and `final_layernorm` (checkpoint prefix `vision_tower.encoder.`)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(VisionBlock(config) for _ in range(config.vt_num_hidden_layers))
        self.final_layernorm = nn.LayerNorm(config.vt_hidden_size, eps=LAYER_NORM_EPS)

    def forward(
        self, x_PD: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bounds: list[int]
    ) -> torch.Tensor:
        for block in self.blocks:
            x_PD = block(x_PD, rope, bounds)
        return self.final_layernorm(x_PD)
