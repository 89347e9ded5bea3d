"""What `openk2 deploy` knows about a model: its shape and weight format, from `config.json`.

A local checkpoint is read as plain JSON; a known hub id (`moonshotai/Kimi-K2.6` ...) uses a
preset written in the same `config.json` form from the spec's tables (k26-model.md §1, §2, §5),
so both take one path. K2.5/K2.6 nest the text model under `text_config` and the MoonViT under
`vision_config`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

WeightFormat = str
""""int4" (routed experts INT4 group-32, rest BF16), "fp8" (128x128 blocks), or "bf16"."""

_K2_TEXT: dict[str, Any] = {
    "hidden_size": 7168, "num_hidden_layers": 61, "first_k_dense_replace": 1,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 384,
    "n_shared_experts": 1, "num_experts_per_tok": 8, "num_attention_heads": 64,
    "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "vocab_size": 163840, "max_position_embeddings": 262144,
    "tie_word_embeddings": False,
}
_INT4 = {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {
    "group_0": {"weights": {"num_bits": 4, "strategy": "group", "group_size": 32}}}}
_FP8 = {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}
_VISION = {"patch_size": 14, "vt_hidden_size": 1152, "vt_num_hidden_layers": 27,
           "vt_intermediate_size": 4304, "init_pos_emb_height": 64, "init_pos_emb_width": 64,
           "merge_kernel_size": [2, 2], "text_hidden_size": 7168}


def _k25_like() -> dict[str, Any]:
    return {"model_type": "kimi_k25", "text_config": _K2_TEXT | {"quantization_config": _INT4},
            "vision_config": dict(_VISION), "quantization_config": _INT4}


PRESETS: dict[str, dict[str, Any]] = {
    "moonshotai/Kimi-K2.6": _k25_like(),
    "moonshotai/Kimi-K2.5": _k25_like(),
    "moonshotai/Kimi-K2-Thinking": _K2_TEXT | {"model_type": "kimi_k2",
                                               "quantization_config": _INT4},
    "moonshotai/Kimi-K2-Instruct-0905": _K2_TEXT | {"model_type": "kimi_k2",
                                                    "quantization_config": _FP8},
    "moonshotai/Kimi-K2-Instruct": _K2_TEXT | {"model_type": "kimi_k2",
                                               "max_position_embeddings": 131072,
                                               "quantization_config": _FP8},
}


@dataclass(frozen=True, slots=True)
class VisionShape:
    """The MoonViT encoder and PatchMerger projector sizes (BF16, every Linear biased)."""

    hidden: int
    layers: int
    intermediate: int
    patch: int
    pos_grid: tuple[int, int]
    merge: int
    """Patches merged into one projector input (2x2 = 4)."""
    text_hidden: int


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The text backbone (DeepSeek-V3 architecture), the optional vision tower, the format."""

    name: str
    hidden_size: int
    num_hidden_layers: int
    first_k_dense_replace: int
    intermediate_size: int
    moe_intermediate_size: int
    n_routed_experts: int
    n_shared_experts: int
    num_experts_per_tok: int
    num_attention_heads: int
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    weight_format: WeightFormat
    vision: VisionShape | None

    @property
    def moe_layers(self) -> int:
        return self.num_hidden_layers - self.first_k_dense_replace


def load_model(source: str) -> ModelShape:
    """A preset by hub id (the `moonshotai/` may be left out), or a directory (or file)
    holding `config.json`."""
    preset = source if source in PRESETS else f"moonshotai/{source}"
    if preset in PRESETS:
        return shape_from_config(PRESETS[preset], name=preset)
    path = Path(source)
    config_file = path / "config.json" if path.is_dir() else path
    if not config_file.is_file():
        known = ", ".join(PRESETS)
        raise ValueError(f"{source!r} is neither a known model ({known}) nor a path to a "
                         "checkpoint with config.json")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {config_file}: {exc}") from exc
    return shape_from_config(config, name=str(path))


def shape_from_config(config: dict[str, Any], *, name: str) -> ModelShape:
    """Build a `ModelShape` from a `config.json` dict; missing keys are named in the error."""
    text = config.get("text_config") or config
    quant = config.get("quantization_config") or text.get("quantization_config")
    keys = [f.name for f in fields(ModelShape) if f.name not in ("name", "weight_format", "vision")]
    missing = [k for k in keys if k not in text]
    if missing:
        raise ValueError(f"{name}: config.json lacks {', '.join(missing)} (not a K2-family "
                         "DeepSeek-V3 config?)")
    vision = _vision(config["vision_config"]) if config.get("vision_config") else None
    return ModelShape(name=name, weight_format=_format(quant), vision=vision,
                      **{k: text[k] for k in keys})


def _format(quant: dict[str, Any] | None) -> WeightFormat:
    """Which weight format a `quantization_config` describes (None = BF16 throughout)."""
    if not quant:
        return "bf16"
    if quant.get("quant_method") == "fp8":
        return "fp8"
    groups = quant.get("config_groups", {})
    bits = {g.get("weights", {}).get("num_bits") for g in groups.values()}
    if quant.get("quant_method") == "compressed-tensors" and bits == {4}:
        return "int4"
    raise ValueError(f"unsupported quantization_config: {json.dumps(quant)[:200]}")


def _vision(vc: dict[str, Any]) -> VisionShape:
    merge = vc.get("merge_kernel_size", [2, 2])
    return VisionShape(hidden=vc["vt_hidden_size"], layers=vc["vt_num_hidden_layers"],
                       intermediate=vc["vt_intermediate_size"], patch=vc["patch_size"],
                       pos_grid=(vc["init_pos_emb_height"], vc["init_pos_emb_width"]),
                       merge=merge[0] * merge[1], text_hidden=vc["text_hidden_size"])
