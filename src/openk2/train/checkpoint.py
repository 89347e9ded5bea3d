"""Resumable training checkpoints: model weights in openk2's safetensors layout plus trainer state.

Layout of `{out_dir}/checkpoints/step_{N:08d}/`:
- `model/`: the full model via `openk2.model.weights.save_model` (HF key names, loadable by the
  engine as-is), or, under LoRA, `adapter.safetensors` with only the adapter tensors (the frozen
  base is rebuilt from the run config);
- `trainer.pt`: optimizer state, data-loader position, every RNG state, the step counter and the
  run config.

A checkpoint is written into a temporary directory and renamed into place, so a crash never
leaves a half-written checkpoint that `latest_checkpoint` would pick up. Restoring all of it makes
the following steps bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from openk2.train.data import BatchLoader
from openk2.train.lora import adapted_modules, lora_state_dict

PREFIX = "step_"
TRAINER_FILE = "trainer.pt"
ADAPTER_FILE = "adapter.safetensors"
MODEL_DIR = "model"


def checkpoints_root(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def complete_checkpoints(out_dir: Path) -> list[Path]:
    """Finished step checkpoints under `out_dir`, oldest first (half-written `.tmp` skipped)."""
    root = checkpoints_root(out_dir)
    found = [
        p
        for p in root.glob(PREFIX + "*")
        if p.name[len(PREFIX) :].isdigit() and (p / TRAINER_FILE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint directory under `out_dir`, or None."""
    done = complete_checkpoints(out_dir)
    return done[-1] if done else None


def capture_rng() -> dict[str, Any]:
    """Every RNG a training step may draw from."""
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))


def _as_tuple(value: Any) -> Any:
    """random.setstate needs tuples; torch.load may hand back lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(
    out_dir: Path,
    *,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: BatchLoader,
    extra: dict[str, Any],
) -> Path:
    """Write checkpoint `step` atomically and return its directory."""
    final = checkpoints_root(out_dir) / f"{PREFIX}{step:08d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if adapted_modules(model):
        save_file(_contiguous(lora_state_dict(model)), str(tmp / ADAPTER_FILE))
    else:
        save_weights(model, tmp / MODEL_DIR)
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "loader": loader.state_dict(),
        "rng": capture_rng(),
        **extra,
    }
    torch.save(state, tmp / TRAINER_FILE)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def load_checkpoint(
    path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, loader: BatchLoader
) -> dict[str, Any]:
    """Restore model, optimizer, loader and RNG from `path`; return the trainer state dict."""
    if (path / "dcp").is_dir():
        raise ValueError(
            f"{path} was written by a multi-process run (DCP shards); resume it with "
            "`openk2 train --nproc N` (N=1 works), which reshards it to any world size"
        )
    state = torch.load(path / TRAINER_FILE, weights_only=True)
    if (path / ADAPTER_FILE).is_file():
        _load_adapter(model, path / ADAPTER_FILE)
    else:
        load_weights_into(model, path / MODEL_DIR)
    load_optimizer_state(optimizer, state["optimizer"])
    loader.load_state_dict(state["loader"])
    restore_rng(state["rng"])
    return state


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Restore per-parameter state (moments, momentum) but keep the configured hyperparameters.

    torch's `load_state_dict` would also bring back the saved groups' lr, weight decay, ...;
    the run config is the truth instead, so a resumed run with a changed LR uses the new one
    (an unchanged config resumes bit-identically either way).
    """
    saved_names = [g.get("name") for g in saved["param_groups"]]
    current = [g.get("name") for g in optimizer.param_groups]
    if saved_names != current:
        raise ValueError(
            f"checkpoint optimizer groups {saved_names} do not match this run's {current}; "
            "was the model or optimizer changed?"
        )
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, values in zip(optimizer.param_groups, hyper, strict=True):
        group.update(values)


def prune_checkpoints(out_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` complete step checkpoints (leftovers are left alone)."""
    for old in complete_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old)


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in tensors.items()}


def _load_adapter(model: nn.Module, path: Path) -> None:
    saved = load_file(str(path))
    current = lora_state_dict(model)
    if set(saved) != set(current):
        raise ValueError(f"{path}: adapter tensors do not match the model's LoRA modules")
    with torch.no_grad():
        for name, mod in adapted_modules(model):
            mod.lora_A.copy_(saved[f"{name}.lora_A"])  # type: ignore[operator]
            mod.lora_B.copy_(saved[f"{name}.lora_B"])  # type: ignore[operator]


def save_weights(model: nn.Module, path: Path) -> None:
    """Save the model in openk2's checkpoint layout (HF names, config.json, safetensors)."""
    from openk2.model.weights import save_model

    save_model(model, path)


def load_weights_into(model: nn.Module, path: Path) -> None:
    """Copy weights saved by `save_weights` into an existing model of the same config, exactly."""
    from openk2.model.weights import load_state_dict

    saved = load_state_dict(path)
    expected = set(model.state_dict())
    if set(saved) != expected:
        missing, extra = sorted(expected - set(saved)), sorted(set(saved) - expected)
        raise ValueError(f"{path}: checkpoint keys differ (missing {missing}, extra {extra})")
    model.load_state_dict(saved, strict=True)
