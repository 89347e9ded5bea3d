"""MoonViT-3D vision configuration: field names are the hub's `vision_config` keys (`vt_*`).

`VisionConfig.from_hf_json` reads the `vision_config` dict of a K2.5 / K2.6 `config.json`
(unknown keys are ignored, so real files load unchanged) and `to_hf_json` writes it back.
Presets: `debug` for unit tests, `kimi-k2.6` with the real dimensions (~400M parameters).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from openk2.model.errors import ConfigError

LAYER_NORM_EPS = 1e-5
"""Every LayerNorm of the encoder (block norms and `final_layernorm`) uses this epsilon."""
ROPE_THETA = 10000.0
"""Base of the 2-D RoPE and of the sin-cos time embedding."""
ROPE_MAX_SIDE = 512
"""`Rope2DPosEmbRepeated(head_dim, 512, 512)`: the most patches per side an item may have."""
SUPPORTED = {
    "pos_emb_type": ("divided_fixed",),
    "merge_type": ("sd2_tpool",),
    "mm_projector_type": ("patchmerger",),
    "projector_hidden_act": ("gelu",),
    "video_attn_type": ("spatial_temporal",),
}
"""The only values of the string-valued architecture switches that K2.5 / K2.6 ship."""


@dataclass(kw_only=True, slots=True)
class VisionConfig:
    """Hyperparameters of MoonViT-3D and the PatchMerger projector (hub `vision_config`)."""

    patch_size: int = 14
    """Side of a square pixel patch (the Conv2d kernel and stride)."""
    vt_hidden_size: int = 1152
    """Encoder width D."""
    vt_num_hidden_layers: int = 27
    """Encoder blocks."""
    vt_num_attention_heads: int = 16
    """Attention heads; head dim = D / heads (72), a multiple of 4 for the 2-D RoPE."""
    vt_intermediate_size: int = 4304
    """Width of each block's GELU(tanh) MLP."""
    init_pos_emb_height: int = 64
    """Rows of the learnable absolute position grid (bicubic-resized per item)."""
    init_pos_emb_width: int = 64
    """Columns of the learnable absolute position grid."""
    init_pos_emb_time: int = 4
    """Frames covered by the fixed sin-cos time table (= frames per video chunk)."""
    pos_emb_type: str = "divided_fixed"
    """Absolute position embedding: learnable spatial grid + fixed time table."""
    merge_kernel_size: list[int] = field(default_factory=lambda: [2, 2])
    """(kh, kw) patches merged into one LM token."""
    merge_type: str = "sd2_tpool"
    """Spatial 2x2 grouping after a mean over the frames of a chunk."""
    video_attn_type: str = "spatial_temporal"
    """Attention runs over all frames of a chunk at once."""
    mm_projector_type: str = "patchmerger"
    """LayerNorm, then Linear-GELU-Linear on the concatenated 2x2 patches."""
    mm_hidden_size: int = 1152
    """Width of the projector's per-patch LayerNorm (= vt_hidden_size)."""
    projector_hidden_act: str = "gelu"
    """Activation between the projector's Linears (exact erf GELU)."""
    projector_ln_eps: float = 1e-5
    """Epsilon of the projector's `pre_norm`."""
    text_hidden_size: int = 7168
    """Projector output width (the language model's hidden size)."""

    def __post_init__(self) -> None:
        for name, allowed in SUPPORTED.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"vision_config.{name} must be one of {allowed}")
        if self.vt_hidden_size % self.vt_num_attention_heads:
            raise ConfigError("vision_config.vt_hidden_size must divide by vt_num_attention_heads")
        if self.head_dim % 4:
            raise ConfigError(f"vision head dim {self.head_dim} must be a multiple of 4 (2-D RoPE)")
        if self.vt_hidden_size % 2:
            raise ConfigError("vision_config.vt_hidden_size must be even (sin-cos time table)")
        if len(self.merge_kernel_size) != 2 or min(self.merge_kernel_size) < 1:
            raise ConfigError("vision_config.merge_kernel_size must be two positive ints")
        if self.mm_hidden_size != self.vt_hidden_size:
            raise ConfigError("vision_config.mm_hidden_size must equal vt_hidden_size")

    @property
    def head_dim(self) -> int:
        """Per-head width of the encoder's attention."""
        return self.vt_hidden_size // self.vt_num_attention_heads

    @property
    def merged_size(self) -> int:
        """Input width of the projector's first Linear: D times the merge kernel area."""
        kh, kw = self.merge_kernel_size
        return self.vt_hidden_size * kh * kw

    @classmethod
    def from_hf_json(cls, raw: dict[str, Any]) -> VisionConfig:
        """Build from a hub `vision_config` dict, ignoring keys this model has no use for."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in names}
        if "merge_kernel_size" in kwargs:
            kwargs["merge_kernel_size"] = list(kwargs["merge_kernel_size"])
        return cls(**kwargs)

    def to_hf_json(self) -> dict[str, Any]:
        """The hub `vision_config` dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["merge_kernel_size"] = list(self.merge_kernel_size)
        return out


VISION_PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(
        vt_hidden_size=64, vt_num_hidden_layers=2, vt_num_attention_heads=4,
        vt_intermediate_size=96, init_pos_emb_height=8, init_pos_emb_width=8,
        mm_hidden_size=64, text_hidden_size=64,
    ),
    "kimi-k2.6": {},
}  # fmt: skip
"""Named vision sizes: `debug` (tests, CPU) and the real K2.5 / K2.6 tower."""


def get_vision_preset(name: str, **overrides: Any) -> VisionConfig:
    """A fresh `VisionConfig` for a preset name, with optional field overrides."""
    if name not in VISION_PRESETS:
        raise KeyError(f"unknown vision preset {name!r}; choose one of {', '.join(VISION_PRESETS)}")
    return VisionConfig(**{**VISION_PRESETS[name], **overrides})
