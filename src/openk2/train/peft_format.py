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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from openk2.model.peft_lora import (
    CONFIG_FILE,
    PREFIX,
    WEIGHTS_FILE,
    check_fits,
    read_peft_config,
    read_peft_lora,
)
from openk2.train.lora import adapted_modules, add_adapter, is_routed_expert, lora_scale

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "load_peft_adapter", "read_peft_config",
           "save_peft_adapter", "merge_adapter_into"]  # fmt: skip


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


def load_peft_adapter(model: nn.Module, adapter_dir: Path) -> list[str]:
    """Attach a PEFT LoRA adapter folder to the model; return the adapted module names."""
    adapter = read_peft_lora(adapter_dir)
    modules = check_fits(model, adapter)  # all checked first: a bad adapter changes nothing
    with torch.no_grad():
        for name, (a_RI, b_OR) in adapter.pairs.items():
            add_adapter(modules[name], adapter.rank, adapter.scale * adapter.rank)
            modules[name].lora_A.copy_(a_RI)  # type: ignore[operator]
            modules[name].lora_B.copy_(b_OR)  # type: ignore[operator]
    return list(adapter.pairs)


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
