"""LoRA adapters on attention and expert projections, and merging them back into the base.

An adapter adds (α/r)·B·A·x to a projection's output, with A [r, in] and B [out, r] trainable and
the base weight frozen. It is attached in place: `lora_A`/`lora_B` parameters on the projection
module itself plus a forward hook, so the base state-dict keys stay exactly the HF names and any
linear-like module (anything with `.weight` [out, in] whose forward computes x·Wᵀ) can be adapted.
`merge_lora` folds W ← W + (α/r)·B·A and removes the adapters, leaving a plain model that saves in
the base checkpoint layout.

Shape legend: r rank, I in-features, O out-features.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_HANDLE = "_lora_hook_handle"
_SCALE = "_lora_scale"
_ROUTED_EXPERT = re.compile(r"(^|\.)mlp\.experts\.\d+\.")


def _lora_hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    """output + scale · B(A(x)) for the module's first positional input x."""
    x = args[0]
    a_RI: torch.Tensor = module.lora_A  # type: ignore[assignment]
    b_OR: torch.Tensor = module.lora_B  # type: ignore[assignment]
    delta = F.linear(F.linear(x.to(a_RI.dtype), a_RI), b_OR)
    return output + getattr(module, _SCALE) * delta.to(output.dtype)


def add_adapter(module: nn.Module, rank: int, alpha: float) -> None:
    """Attach a zero-initialised adapter (B = 0, so the output is unchanged until trained)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise TypeError(f"LoRA needs a module with a 2-D .weight, got {type(module).__name__}")
    if hasattr(module, _HANDLE):
        raise ValueError("module already has a LoRA adapter")
    if rank <= 0:
        raise ValueError(f"LoRA rank must be positive, got {rank}")
    out_f, in_f = weight.shape
    a_RI = torch.empty(rank, in_f, dtype=torch.float32, device=weight.device)
    nn.init.kaiming_uniform_(a_RI, a=math.sqrt(5))
    module.lora_A = nn.Parameter(a_RI)
    module.lora_B = nn.Parameter(torch.zeros(out_f, rank, device=weight.device))
    setattr(module, _SCALE, alpha / rank)
    setattr(module, _HANDLE, module.register_forward_hook(_lora_hook))


def is_routed_expert(name: str) -> bool:
    """Whether a module path lies in a routed expert (`...mlp.experts.{E}.…`)."""
    return _ROUTED_EXPERT.search(name) is not None


def apply_lora(
    model: nn.Module,
    *,
    targets: list[str],
    rank: int,
    alpha: float,
    routed_experts: bool = True,
) -> list[str]:
    """Freeze every parameter, then adapt each module whose last name is in `targets`.

    `routed_experts=False` leaves `mlp.experts.{E}.*` alone (shared experts and dense MLPs are
    still adapted): that adapter is expressible in PEFT's format. Returns the adapted module
    names; raises if none matched (a typo in `targets` would otherwise train nothing).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    wanted = set(targets)
    adapted = [
        name for name, mod in model.named_modules() if name.rsplit(".", 1)[-1] in wanted
        and isinstance(getattr(mod, "weight", None), torch.Tensor)
        and (routed_experts or not is_routed_expert(name))
    ]  # fmt: skip
    if not adapted:
        raise ValueError(f"no module matches LoRA targets {sorted(wanted)}")
    modules = dict(model.named_modules())
    for name in adapted:
        add_adapter(modules[name], rank, alpha)
    return adapted


def adapted_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every module carrying an adapter."""
    return [(n, m) for n, m in model.named_modules() if hasattr(m, _HANDLE)]


def lora_scale(module: nn.Module) -> float:
    """The adapter's output scale alpha / rank."""
    return float(getattr(module, _SCALE))


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, keyed `{module}.lora_A` / `{module}.lora_B`."""
    out: dict[str, torch.Tensor] = {}
    for name, mod in adapted_modules(model):
        out[f"{name}.lora_A"] = mod.lora_A.detach()  # type: ignore[union-attr]
        out[f"{name}.lora_B"] = mod.lora_B.detach()  # type: ignore[union-attr]
    return out


@torch.no_grad()
def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its base weight and remove it; return how many were merged."""
    merged = adapted_modules(model)
    for _, mod in merged:
        weight: torch.Tensor = mod.weight  # type: ignore[assignment]
        b_OR, a_RI = mod.lora_B, mod.lora_A  # type: ignore[union-attr]
        delta_OI = (b_OR.float() @ a_RI.float()) * getattr(mod, _SCALE)
        weight.add_(delta_OI.to(weight.dtype))
        getattr(mod, _HANDLE).remove()
        for attr in ("lora_A", "lora_B", _HANDLE, _SCALE):
            delattr(mod, attr)
    return len(merged)
