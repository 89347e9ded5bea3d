"""Research overrides of a built model's context settings: the YaRN factor and
`max_position_embeddings`.

Why a separate step: the factor is not only a position map. Under YaRN it also sets the softmax
scale of *every* attention layer (qk_head_dim^-0.5 * mscale(factor)^2: 0.1447 at factor 64,
0.1903 at 512), so changing it on released weights changes every layer's logits; the weights
were trained with one factor and nothing else is supported. Raising only
`max_position_embeddings` changes no numerics, it just lets longer requests in.
"""

from __future__ import annotations

import logging

from openk2.model.config import ModelConfig
from openk2.model.layers.mla import MLA
from openk2.model.layers.rope import (
    RotaryEmbedding,
    rope_attention_factor,
    rope_inv_freq,
    softmax_scale,
)
from openk2.model.model import KimiK2ForCausalLM

log = logging.getLogger(__name__)


def override_context(
    model: KimiK2ForCausalLM,
    *,
    rope_factor: float | None = None,
    max_position_embeddings: int | None = None,
) -> list[str]:
    """Apply the overrides in place (config, rotary frequencies, softmax scales); returns the
    warnings it logged."""
    config = model.config
    warnings: list[str] = []
    if max_position_embeddings is not None:
        if max_position_embeddings < 1:
            raise ValueError(f"max_position_embeddings must be >= 1, got {max_position_embeddings}")
        config = config.replace(max_position_embeddings=max_position_embeddings)
    if rope_factor is not None:
        config, note = _with_factor(config, rope_factor)
        warnings.append(note)
    for note in warnings:
        log.warning(note)
    _rebuild(model, config)
    return warnings


def _with_factor(config: ModelConfig, factor: float) -> tuple[ModelConfig, str]:
    """The config with YaRN factor `factor` (YaRN added if absent) and the warning to log."""
    if factor < 1:
        raise ValueError(f"a YaRN factor must be >= 1, got {factor}")
    scaling = dict(config.rope_scaling or {"type": "yarn", "beta_fast": 32.0, "beta_slow": 1.0,
                                            "mscale": 1.0, "mscale_all_dim": 1.0,
                                            "original_max_position_embeddings":
                                            config.max_position_embeddings})  # fmt: skip
    before = softmax_scale(config)
    scaling["factor"] = float(factor)
    config = config.replace(rope_scaling=scaling)
    after = softmax_scale(config)
    note = (
        f"RESEARCH OVERRIDE: YaRN factor set to {factor:g}. This changes the softmax scale of "
        f"every attention layer ({before:.4f} -> {after:.4f}) as well as the rotary "
        "frequencies; released weights were trained with their own factor, so every layer's "
        "logits change and quality is unknown until measured (openk2 eval niah/ruler)."
    )
    return config, note


def _rebuild(model: KimiK2ForCausalLM, config: ModelConfig) -> None:
    """Recompute what the model derived from its config at build time."""
    model.config = config
    for module in model.modules():
        if isinstance(module, RotaryEmbedding):
            module.inv_freq_P = rope_inv_freq(config)
            module.attention_factor = rope_attention_factor(config)
        elif isinstance(module, MLA):
            module.scale = softmax_scale(config)
