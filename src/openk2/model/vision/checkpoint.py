"""Vision tensors of K2.5 / K2.6 checkpoints: config, load and save beside `language_model.*`.

Hub files (and what openk2 writes) use `vision_tower.*` and `mm_projector.*`;
transformers 5.23's `save_pretrained` mis-reverses two prefixes, fixed by `VISION_RENAME_RULES`
(the vision counterpart of `weights.RENAME_RULES`). Its `wqkv` rows come back in the original
interleaved RoPE order, so no permutation is needed; files written with
`save_original_format=False` keep transformers' own names and q/k/v split, undone by
`hf_names`. The text model loads through `weights.load_model`, which skips these tensors.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from openk2.model.config import CONFIG_NAME
from openk2.model.errors import CheckpointError, ConfigError
from openk2.model.safetensors_io import CheckpointReader, read_config
from openk2.model.safetensors_writer import ShardedWriter
from openk2.model.vision.config import VisionConfig
from openk2.model.vision.hf_names import combine, vision_sources
from openk2.model.vision.multimodal import MEDIA_PAD_TOKEN_ID, KimiK25ForConditionalGeneration
from openk2.model.vision.patch_embed import DividedFixedPosEmb
from openk2.model.weights import DEFAULT_MAX_SHARD_SIZE, load_model
from openk2.model.weights import _saved_config as saved_config

VISION_PREFIXES = ("vision_tower.", "mm_projector.")
VISION_RENAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^vision_tower\.encoder\.patch_embed\."), "vision_tower.patch_embed."),  # HF523
    (re.compile(r"^model\.mm_projector\.pre_norm\."), "mm_projector.pre_norm."),  # HF523
)
HF523_VISION_KEYS = {
    "hidden_size": "vt_hidden_size",
    "num_hidden_layers": "vt_num_hidden_layers",
    "num_attention_heads": "vt_num_attention_heads",
    "intermediate_size": "vt_intermediate_size",
    "pos_emb_height": "init_pos_emb_height",
    "pos_emb_width": "init_pos_emb_width",
    "pos_emb_time": "init_pos_emb_time",
}
"""transformers 5.23's own `vision_config` names -> the hub's (`vt_*`) names."""


def vision_tensor_name(checkpoint_name: str) -> str | None:
    """The multimodal model's name for a vision checkpoint tensor; None for text tensors."""
    for pattern, replacement in VISION_RENAME_RULES:
        if pattern.match(checkpoint_name):
            return pattern.sub(replacement, checkpoint_name, count=1)
    return checkpoint_name if checkpoint_name.startswith(VISION_PREFIXES) else None


def vision_config_from_json(raw: dict[str, Any]) -> VisionConfig:
    """The `VisionConfig` of a `kimi_k25` config.json (hub `vt_*` or transformers 5.23 names)."""
    vision = raw.get("vision_config")
    if not isinstance(vision, dict):
        raise ConfigError(
            "config.json has no vision_config: not a K2.5 / K2.6 multimodal checkpoint"
        )
    values = {HF523_VISION_KEYS.get(k, k): v for k, v in vision.items()}
    text = raw.get("text_config") or {}
    values.setdefault("text_hidden_size", text.get("hidden_size"))
    values.setdefault(
        "mm_hidden_size", raw.get("projection_hidden_size") or values.get("vt_hidden_size")
    )
    values.setdefault("projector_ln_eps", raw.get("projection_layer_norm_eps", 1e-5))
    return VisionConfig.from_hf_json({k: v for k, v in values.items() if v is not None})


def load_multimodal(
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> KimiK25ForConditionalGeneration:
    """The multimodal model of a K2.5 / K2.6 checkpoint directory (text + vision tensors)."""
    raw = read_config(path)
    vision_config = vision_config_from_json(raw)
    text_model = load_model(path, dtype=dtype, device=device)
    pad_id = int(
        raw.get("media_placeholder_token_id", raw.get("image_token_id", MEDIA_PAD_TOKEN_ID))
    )
    with torch.device("meta"):
        model = KimiK25ForConditionalGeneration(
            text_model.config, vision_config, media_pad_token_id=pad_id
        )
    model.language_model = text_model
    _fill_vision(model, path, dtype, torch.device(device))
    return model.eval()


def _fill_vision(
    model: KimiK25ForConditionalGeneration,
    path: str | os.PathLike[str],
    dtype: torch.dtype | None,
    device: torch.device,
) -> None:
    """Read every vision tensor into `model` (names and shapes checked first)."""
    vision = {k: v for k, v in model.state_dict().items() if k.startswith(VISION_PREFIXES)}
    head_dim = model.vision_config.head_dim
    with CheckpointReader(path) as reader:
        sources = _sources(reader.names)
        _check_names(reader.path, set(vision), set(sources))
        state = {}
        for name, target in vision.items():
            tensor = combine([reader.get(n) for n in sources[name]], head_dim)
            if tuple(tensor.shape) != tuple(target.shape):
                raise CheckpointError(
                    f"{reader.path}: {' + '.join(sources[name])} has shape "
                    f"{list(tensor.shape)}, the vision config expects {list(target.shape)}"
                )
            state[name] = tensor.to(device=device, dtype=dtype or tensor.dtype)
    model.load_state_dict(state, strict=False, assign=True)
    for module in model.modules():
        if isinstance(module, DividedFixedPosEmb):
            module.reset_time_table()


def _sources(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Model vision tensor -> checkpoint tensor(s): hub names, or transformers' native ones."""
    sources = vision_sources(names)
    for name in names:
        target = vision_tensor_name(name)
        if target is not None:
            sources[target] = (name,)
    return sources


def _check_names(path: Path, expected: set[str], found: set[Any]) -> None:
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: vision tensors do not match vision_config: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})"
        )


def save_multimodal(
    model: KimiK25ForConditionalGeneration,
    path: str | os.PathLike[str],
    *,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
) -> list[Path]:
    """Write the K2.5 / K2.6 layout: `language_model.*`, `vision_tower.*`, `mm_projector.*` in
    sharded safetensors with one index (vision last, as the hub orders it), and a `kimi_k25`
    config.json carrying `text_config` and `vision_config`. Returns the shard paths."""
    out_dir = Path(path)
    with ShardedWriter(out_dir, max_shard_size=max_shard_size) as writer:
        for name, tensor in model.state_dict().items():
            if not name.startswith(VISION_PREFIXES):
                writer.add(name, tensor)
        for name, tensor in model.state_dict().items():
            if name.startswith(VISION_PREFIXES):
                writer.add(name, tensor)
    config = saved_config(model.language_model, int4_experts=False, layout="k25")
    config["vision_config"] = model.vision_config.to_hf_json()
    config["media_placeholder_token_id"] = model.media_pad_token_id
    (out_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return sorted(out_dir.glob("model*.safetensors"))
