"""PatchMerger projector (`mm_projector.*`): merged vision patches -> language-model tokens.

pre_norm: LayerNorm(D) on each of the kh*kw patches of a token, then the patches are
concatenated ([N, kh*kw*D]) and sent through proj = Linear -> GELU (exact erf) -> Linear to
the text width.
"""

from __future__ import annotations

import torch
from torch import nn

from openk2.model.vision.config import VisionConfig


class PatchMerger(nn.Module):
    """[N, kh*kw, D] -> [N, text_hidden_size]; `proj.1` is the parameter-free GELU."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        merged = config.merged_size
        self.pre_norm = nn.LayerNorm(config.mm_hidden_size, eps=config.projector_ln_eps)
        self.proj = nn.Sequential(
            nn.Linear(merged, merged), nn.GELU(), nn.Linear(merged, config.text_hidden_size)
        )

    def forward(self, merged_NKD: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pre_norm(merged_NKD).flatten(1))
