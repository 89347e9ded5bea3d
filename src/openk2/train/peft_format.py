"""openk2 LoRA adapters in Hugging Face PEFT's on-disk format, both ways.

A PEFT LoRA adapter is a folder with `adapter_config.json` (`peft_type: LORA`, `r`,
`lora_alpha`, `target_modules`, ...) and `adapter_model.safetensors` whose keys are
`base_model.model.{module}.lora_A.weight` [r, I] and `...lora_B.weight` [O, r], with the output
scaled by lora_alpha / r. openk2's module paths are the DeepseekV3 checkpoint names, so the
module part maps one to one — except routed experts: transformers' DeepseekV3 fuses them into
3-D parameters (`mlp.experts.gate_up_proj`), which PEFT's `target_modules` cannot address, so an
adapter on `mlp.experts.{E}.*` is refused on save rather than written in a form `peft` would
silently ignore. Loading accepts per-expert keys (vLLM's MoE LoRA layout) since openk2 keeps
experts split.

Shape legend: r rank, I in-features, O out-features.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from openk2.train.lora import adapted_modules, add_adapter, is_routed_expert, lora_scale

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PREFIX = "base_model.model."
_KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$")
# PEFT features that change the maths beyond W + (alpha/r)·B·A; refused when set.
_UNSUPPORTED = {"use_dora": False, "fan_in_fan_out": False, "lora_bias": False}


def save_peft_adapter(model: nn.Module, out_dir: Path, *, base_model: str | None = None) -> Path:
    """Write the model's adapters as a PEFT LoRA folder; refuse what PEFT cannot express."""
    adapted = adapted_modules(model)
    if not adapted:
        raise ValueError("the model carries no LoRA adapter to save")
    routed = [name for name, _ in adapted if is_routed_expert(name)]
    if routed:
        raise ValueError(
            f"{len(routed)} adapted modules are routed experts (e.g. {routed[0]}); "
            "transformers' DeepseekV3 fuses experts into 3-D parameters that PEFT's "
            "target_modules cannot address; train with lora.routed_experts: false, or keep "
            "the merged model"
        )
    rank, alpha = _common_rank_alpha(adapted)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = _adapter_config(adapted, rank, alpha, base_model)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    _save_tensors(adapted, out_dir / WEIGHTS_FILE)
    return out_dir


def _common_rank_alpha(adapted: list[tuple[str, nn.Module]]) -> tuple[int, float]:
    """The one (r, alpha) every adapter shares: PEFT's plain config has a single pair."""
    pairs = {(int(m.lora_A.shape[0]), lora_scale(m) * m.lora_A.shape[0]) for _, m in adapted}
    if len(pairs) != 1:
        raise ValueError(f"adapters use different (rank, alpha) pairs {sorted(pairs)}")
    rank, alpha = pairs.pop()
    return rank, alpha


def _adapter_config(
    adapted: list[tuple[str, nn.Module]], rank: int, alpha: float, base_model: str | None
) -> dict[str, Any]:
    """The adapter_config.json fields PEFT and vLLM read; the rest take PEFT's defaults."""
    targets = sorted({name.rsplit(".", 1)[-1] for name, _ in adapted})
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": rank,
        "lora_alpha": int(alpha) if float(alpha).is_integer() else alpha,
        "target_modules": targets,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "inference_mode": True,
        "init_lora_weights": True,
    }


def _save_tensors(adapted: list[tuple[str, nn.Module]], path: Path) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, mod in adapted:
        for ab in "AB":
            weight: torch.Tensor = getattr(mod, f"lora_{ab}")
            tensors[f"{PREFIX}{name}.lora_{ab}.weight"] = weight.detach().cpu().contiguous()
    save_file(tensors, str(path), metadata={"format": "pt"})


def read_peft_config(adapter_dir: Path) -> dict[str, Any]:
    """adapter_config.json, checked for the LoRA variants openk2 applies exactly."""
    path = adapter_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no PEFT adapter config")
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


def load_peft_adapter(model: nn.Module, adapter_dir: Path) -> list[str]:
    """Attach a PEFT LoRA adapter folder to the model; return the adapted module names."""
    from safetensors.torch import load_file

    config = read_peft_config(adapter_dir)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("use_rslora"):
        alpha = alpha * rank / math.sqrt(rank)  # rsLoRA scales by alpha / sqrt(r)
    pairs = _pair_tensors(load_file(str(adapter_dir / WEIGHTS_FILE)), adapter_dir)
    modules = dict(model.named_modules())
    for name, (a_RI, b_OR) in pairs.items():  # check all first: a bad adapter changes nothing
        _check(modules.get(name), name, a_RI, b_OR, rank)
    with torch.no_grad():
        for name, (a_RI, b_OR) in pairs.items():
            add_adapter(modules[name], rank, alpha)
            modules[name].lora_A.copy_(a_RI)  # type: ignore[operator]
            modules[name].lora_B.copy_(b_OR)  # type: ignore[operator]
    return list(pairs)


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


def _check(
    module: nn.Module | None, name: str, a_RI: torch.Tensor, b_OR: torch.Tensor, rank: int
) -> None:
    """The saved A [r, I] and B [O, r] must fit the module's base weight [O, I]."""
    weight = getattr(module, "weight", None)
    if module is None or not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise ValueError(f"adapter targets {name!r}, which this model has no projection for")
    out_f, in_f = weight.shape
    if a_RI.shape != (rank, in_f) or b_OR.shape != (out_f, rank):
        raise ValueError(
            f"{name}: adapter A {tuple(a_RI.shape)} / B {tuple(b_OR.shape)}, model expects "
            f"A {(rank, in_f)} / B {(out_f, rank)}"
        )


def merge_adapter_into(base_dir: str | Path, adapter_dir: Path, out_dir: Path) -> int:
    """Load the base model directory, fold the adapter in, save a servable model (weights in
    the base's dtype, config, the base's tokenizer) at `out_dir`; return the merged count."""
    from openk2.model.weights import load_model, save_model
    from openk2.tokenizer.resolve import copy_tokenizer, resolve_tokenizer
    from openk2.train.lora import merge_lora

    read_peft_config(adapter_dir)  # fail on a bad adapter before loading the base
    model = load_model(base_dir)
    load_peft_adapter(model, adapter_dir)
    merged = merge_lora(model)
    save_model(model, out_dir)
    copy_tokenizer(resolve_tokenizer(base_dir), out_dir)
    return merged
