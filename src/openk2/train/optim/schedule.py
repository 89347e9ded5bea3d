"""Learning-rate schedules: warm-up then WSD (warm-up, stable, decay) or cosine.

K2 pre-training used WSD: 500 warm-up steps, a long constant phase, then a cosine decay to 10% of
the peak (2e-4 → 2e-5). A schedule here is a pure function of the step, so resuming a run needs
only the step counter, never scheduler state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

ScheduleKind = Literal["wsd", "cosine", "constant"]
DecayShape = Literal["cosine", "linear"]


@dataclass(kw_only=True, slots=True)
class ScheduleConfig:
    """How the LR multiplier moves from 0 to 1 and back down over a run."""

    kind: ScheduleKind = "wsd"
    """'wsd' (K2), 'cosine' (decay starts right after warm-up) or 'constant'."""
    warmup_steps: int = 0
    """Linear warm-up from ~0 to the peak over this many optimizer steps."""
    decay_fraction: float = 0.2
    """WSD only: the last fraction of the run spent decaying."""
    decay_shape: DecayShape = "cosine"
    """WSD only: shape of the decay phase (K2 used cosine)."""
    min_lr_ratio: float = 0.1
    """Final LR as a fraction of the peak (K2: 2e-5 / 2e-4 = 0.1)."""

    def __post_init__(self) -> None:
        if self.kind not in ("wsd", "cosine", "constant"):
            raise ValueError(f"schedule kind must be wsd, cosine or constant, got {self.kind!r}")
        if self.decay_shape not in ("cosine", "linear"):
            raise ValueError(f"decay_shape must be cosine or linear, got {self.decay_shape!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


def lr_factor(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """LR multiplier for optimizer step `step` (0-based) of a `total_steps`-step run."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return 1.0
    if cfg.kind == "cosine":
        start = cfg.warmup_steps
    else:
        start = max(cfg.warmup_steps, total_steps - round(cfg.decay_fraction * total_steps))
    if step < start:
        return 1.0
    progress = min(1.0, (step - start + 1) / max(1, total_steps - start))
    return _decay(progress, cfg.decay_shape if cfg.kind == "wsd" else "cosine", cfg.min_lr_ratio)


def _decay(progress: float, shape: DecayShape, floor: float) -> float:
    """Interpolate from 1 (progress 0) to `floor` (progress 1)."""
    if shape == "linear":
        return 1.0 - (1.0 - floor) * progress
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_lr(optimizer: torch.optim.Optimizer, factor: float) -> float:
    """Set every group's lr to base_lr · factor; return the first group's lr (for logging).

    A group without `base_lr` adopts its current lr as the peak on the first call.
    """
    groups: list[dict[str, Any]] = optimizer.param_groups
    for group in groups:
        group["lr"] = group.setdefault("base_lr", group["lr"]) * factor
    return groups[0]["lr"] if groups else 0.0
