"""Reading a Hugging Face PEFT LoRA folder: the one reader training and serving share.

A PEFT LoRA adapter is `adapter_config.json` (`peft_type: LORA`, `r`, `lora_alpha`,
`target_modules`, ...) plus `adapter_model.safetensors` with keys
`base_model.model.{module}.lora_A.weight` [r, I] and `...lora_B.weight` [O, r]; the output
delta is scale·B·A·x with scale = lora_alpha / r (lora_alpha / √r under rsLoRA). openk2's
module paths are the DeepseekV3 checkpoint names, so `{module}` is a module of the model as is.

Shape legend: r rank, I in-features, O out-features.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PREFIX = "base_model.model."
_KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$")
_UNSUPPORTED = {"use_dora": False, "fan_in_fan_out": False, "lora_bias": False}
"""PEFT features that change the maths beyond W + scale·B·A; refused when set."""


@dataclass(kw_only=True, slots=True)
class PeftLoRA:
    """One adapter folder, read and checked: rank, output scale and (A, B) per module."""

    rank: int
    scale: float
    """Multiplier of B·A·x (lora_alpha / r, or lora_alpha / √r with use_rslora)."""
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    """Module path → (A [r, I], B [O, r])."""


def read_peft_config(adapter_dir: Path) -> dict[str, Any]:
    """adapter_config.json, checked for the LoRA variants openk2 applies exactly."""
    path = adapter_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no PEFT adapter config{_nearby_adapter(adapter_dir)}")
    config = json.loads(path.read_text())
    if config.get("peft_type") != "LORA":
        raise ValueError(f"{path}: peft_type {config.get('peft_type')!r} is not LORA")
    for key, plain in _UNSUPPORTED.items():
        if config.get(key, plain) != plain:
            raise ValueError(f"{path}: {key}={config[key]!r} is not supported")
    if config.get("bias", "none") != "none" or config.get("modules_to_save"):
        raise ValueError(f"{path}: bias terms and modules_to_save are not supported")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError(f"{path}: per-module rank_pattern/alpha_pattern are not supported")
    return config


def recorded_base_differs(adapter_dir: Path, model_dir: Path) -> str | None:
    """The adapter's `base_model_name_or_path` when it names another local model directory.

    Shapes catch most wrong pairings, but two models of one architecture size (a preset and
    the embedded model) accept each other's adapters and would serve nonsense silently."""
    recorded = read_peft_config(adapter_dir).get("base_model_name_or_path")
    if not isinstance(recorded, str) or not Path(recorded).is_dir():
        return None  # trained on a preset, or a hub id: nothing local to compare
    if model_dir.is_dir() and Path(recorded).resolve() == model_dir.resolve():
        return None
    return recorded


def _nearby_adapter(path: Path) -> str:
    """A hint when `path` is a training run or its `final/` model rather than the adapter."""
    for inner in (path / "adapter", path / "final" / "adapter"):
        if (inner / CONFIG_FILE).is_file():
            return f" (the adapter of this run is {inner})"
    return ""


def read_peft_lora(adapter_dir: Path) -> PeftLoRA:
    """The adapter folder's config and tensors, paired per module (nothing attached yet)."""
    from safetensors.torch import load_file

    config = read_peft_config(adapter_dir)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    weights = adapter_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no adapter weights")
    pairs = _pair_tensors(load_file(str(weights)), adapter_dir)
    return PeftLoRA(rank=rank, scale=scale, pairs=pairs)


def _pair_tensors(
    tensors: dict[str, torch.Tensor], adapter_dir: Path
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module: (A, B)} from PEFT keys; unknown or unpaired keys are errors naming the key."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        if match is None:
            raise ValueError(f"{adapter_dir / WEIGHTS_FILE}: unexpected tensor {key!r}")
        found.setdefault(match.group(1), {})[match.group(2)] = tensor
    incomplete = [name for name, ab in found.items() if set(ab) != {"A", "B"}]
    if incomplete:
        raise ValueError(f"{adapter_dir}: lora_A/lora_B missing for {incomplete[0]}")
    return {name: (ab["A"], ab["B"]) for name, ab in found.items()}


def check_fits(model: nn.Module, adapter: PeftLoRA) -> dict[str, nn.Module]:
    """The adapted modules by name, once every (A, B) fits its module's base weight [O, I]."""
    modules = dict(model.named_modules())
    for name, (a_RI, b_OR) in adapter.pairs.items():
        _check(modules.get(name), name, a_RI, b_OR, adapter.rank)
    return {name: modules[name] for name in adapter.pairs}


def _check(
    module: nn.Module | None, name: str, a_RI: torch.Tensor, b_OR: torch.Tensor, rank: int
) -> None:
    weight = getattr(module, "weight", None)
    if module is None or not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise ValueError(f"adapter targets {name!r}, which this model has no projection for")
    out_f, in_f = weight.shape
    if a_RI.shape != (rank, in_f) or b_OR.shape != (out_f, rank):
        raise ValueError(
            f"{name}: adapter A {tuple(a_RI.shape)} / B {tuple(b_OR.shape)}, model expects "
            f"A {(rank, in_f)} / B {(out_f, rank)}: the adapter was trained on another base model"
        )
