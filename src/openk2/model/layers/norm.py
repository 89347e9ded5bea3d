"""RMSNorm as the K2 checkpoints expect it.

The statistics are computed in fp32, the normalised value is cast back to the input dtype and
only then multiplied by the weight (the DeepSeek / HF order; multiplying before the cast gives
different bf16 results).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LATENT_NORM_EPS = 1e-6
"""Epsilon of `q_a_layernorm` and `kv_a_layernorm`: the reference code builds them without
passing `rms_norm_eps`, so they keep the class default 1e-6 (bit parity with HF needs it)."""


class RMSNorm(nn.Module):
    """y = weight * cast_back(x_f32 * rsqrt(mean(x_f32^2) + eps))."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.rms_norm computes reduced-precision inputs in fp32 and casts back: exactly the
        # reference order, in one kernel instead of six. It would apply a weight before that
        # cast, so the weight goes inside only when there is no cast (same products in fp32).
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        return self.weight * F.rms_norm(x, self.weight.shape, eps=self.eps)

    def init_weights(self) -> None:
        """Weight = 1."""
        nn.init.ones_(self.weight)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
