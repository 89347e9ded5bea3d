"""Which optimizer owns which parameter: the Muon/AdamW split, as code (conventions §9).

Rules (K2 report §2.1; Moonlight; KellerJordan's Muon contract):
- hidden matrices (ndim ≥ 2: attention projections, dense and per-expert MLP weights, the router
  gate, LoRA factors) → Muon, one group per shape so same-shape matrices share a batched NS5;
- embeddings, `lm_head` and the vision patch-embed → AdamW with weight decay, because their rows
  are looked up or read out one token at a time and have no "hidden matrix" geometry;
- norms, biases and other vectors → AdamW without weight decay;
- the router's `e_score_correction_bias` → no optimizer: the load-balancing hook owns it.

`param_groups` asserts that every trainable parameter lands in exactly one group, so a new
module type cannot silently go untrained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

ADAMW_MATRIX_NAMES = ("embed_tokens", "lm_head", "patch_embed")
"""Name fragments of ≥2-D parameters that AdamW owns despite being matrices."""

HOOK_MANAGED_NAMES = ("e_score_correction_bias",)
"""Name fragments of parameters no optimizer may touch (updated by post-step hooks)."""


@dataclass(kw_only=True, slots=True)
class GroupHyper:
    """Hyperparameters `param_groups` writes into the groups it builds."""

    lr: float = 0.02
    """Peak learning rate of the Muon groups (and of AdamW unless `adamw_lr` is set)."""
    adamw_lr: float | None = None
    """Peak AdamW learning rate; None reuses `lr` (RMS matching makes the two comparable)."""
    weight_decay: float = 0.1
    """Decoupled weight decay for matrices and embeddings (K2: 0.1); vectors get none."""
    momentum: float = 0.95
    """Muon momentum μ."""
    nesterov: bool = True
    """Use the Nesterov direction G + μ·M (Moonlight) instead of M."""
    ns_steps: int = 5
    """Newton–Schulz iterations."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW (β1, β2)."""
    eps: float = 1e-8
    """AdamW ε."""
    use_muon: bool = True
    """False sends the hidden matrices to AdamW too (the AdamW baseline)."""


def route(name: str, ndim: int) -> str:
    """Return 'hook', 'muon', 'adamw_decay' or 'adamw_no_decay' for one parameter."""
    if any(frag in name for frag in HOOK_MANAGED_NAMES):
        return "hook"
    if ndim < 2:
        return "adamw_no_decay"
    if any(frag in name for frag in ADAMW_MATRIX_NAMES):
        return "adamw_decay"
    return "muon"


def param_groups(model: nn.Module, hyper: GroupHyper | None = None) -> list[dict[str, Any]]:
    """Build `MuonAdamW` groups for every trainable parameter of `model`.

    Each group carries `name`, `names` (parameter names, for logs and checks), `use_muon` and
    `base_lr` (the peak LR the schedule scales). Frozen parameters (requires_grad=False, e.g.
    the base weights under LoRA) are skipped.
    """
    hyper = hyper or GroupHyper()
    muon_by_shape: dict[tuple[int, ...], list[tuple[str, nn.Parameter]]] = {}
    adamw: dict[str, list[tuple[str, nn.Parameter]]] = {"adamw_decay": [], "adamw_no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = route(name, p.ndim)
        if kind == "muon" and not hyper.use_muon:
            kind = "adamw_decay"
        if kind == "muon":
            muon_by_shape.setdefault(tuple(p.shape), []).append((name, p))
        elif kind != "hook":
            adamw[kind].append((name, p))
    groups = [_muon_group(shape, named, hyper) for shape, named in muon_by_shape.items()]
    for kind, named in adamw.items():
        if named:
            groups.append(_adamw_group(kind, named, hyper))
    check_coverage(model, groups)
    return groups


def _muon_group(
    shape: tuple[int, ...], named: list[tuple[str, nn.Parameter]], hyper: GroupHyper
) -> dict[str, Any]:
    """One Muon group of same-shape matrices."""
    return {
        "name": "muon_" + "x".join(map(str, shape)),
        "names": [n for n, _ in named],
        "params": [p for _, p in named],
        "use_muon": True,
        "lr": hyper.lr,
        "base_lr": hyper.lr,
        "weight_decay": hyper.weight_decay,
        "momentum": hyper.momentum,
        "nesterov": hyper.nesterov,
        "ns_steps": hyper.ns_steps,
    }


def _adamw_group(
    kind: str, named: list[tuple[str, nn.Parameter]], hyper: GroupHyper
) -> dict[str, Any]:
    """One AdamW group; vectors ('adamw_no_decay') get no weight decay."""
    lr = hyper.adamw_lr if hyper.adamw_lr is not None else hyper.lr
    return {
        "name": kind,
        "names": [n for n, _ in named],
        "params": [p for _, p in named],
        "use_muon": False,
        "lr": lr,
        "base_lr": lr,
        "weight_decay": hyper.weight_decay if kind == "adamw_decay" else 0.0,
        "betas": hyper.betas,
        "eps": hyper.eps,
    }


def check_coverage(model: nn.Module, groups: list[dict[str, Any]]) -> None:
    """Raise ValueError unless each trainable, optimizer-owned parameter is in exactly one group.

    Hook-managed parameters (the router bias) must be in no group at all.
    """
    seen: dict[int, str] = {}
    for group in groups:
        for p in group["params"]:
            if id(p) in seen:
                first, second = seen[id(p)], group["name"]
                raise ValueError(f"a parameter is in both group {first!r} and {second!r}")
            seen[id(p)] = group["name"]
    missing, forbidden = [], []
    for name, p in model.named_parameters():
        owned = id(p) in seen
        if route(name, p.ndim) == "hook":
            if owned:
                forbidden.append(name)
        elif p.requires_grad and not owned:
            missing.append(name)
    if missing:
        raise ValueError(f"trainable parameters in no optimizer group: {missing}")
    if forbidden:
        raise ValueError(f"hook-managed parameters must not be optimised: {forbidden}")
    own = {id(p) for p in model.parameters()}
    strays = [g for g in seen if g not in own]
    if strays:
        raise ValueError(f"{len(strays)} grouped tensors are not parameters of the model")
