"""Several LoRA adapters over one base model, chosen per sequence and batched together.

vLLM's multi-LoRA model: the base weights stay as they are and every adapted projection gets
one forward hook that adds, for each batch row, its own adapter's scale·B·A·x (nothing for
rows on the base model). The runner tells the hooks which adapter each row uses before every
forward call (`AdapterSet.select`), so one batch may mix the base and any number of adapters.

Which rows a hook sees: every adapted projection receives batch-major inputs, [B, T, I] or
their flattened [B·T, I] (the shared expert), so row r of a flat input belongs to batch row
r // T. Routed experts see tokens regrouped by expert and are therefore refused here (merge
such an adapter with `openk2 lora-merge` and serve the result). An adapter on `kv_b_proj`
switches that layer's attention to the naive path, the only one that applies `kv_b_proj` as
a module (the absorbed paths fold its weight into the query).

Prefix-cache pages are keyed by adapter too (`block_manager`): the same prompt under two
adapters has different latents, so its pages are never shared.

Shape legend: R rows of one adapter, I in-features, O out-features, r rank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.peft_lora import PeftLoRA, check_fits, read_peft_lora

_ROUTED_EXPERT = re.compile(r"(^|\.)mlp\.experts\.\d+\.")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(slots=True)
class _Selection:
    """The adapter of each row of the forward call in progress (None: the base model)."""

    rows: list[str | None] = field(default_factory=list)


class _AdapterHook:
    """The forward hook of one projection: per-row deltas of the adapters that adapt it."""

    def __init__(self, selection: _Selection) -> None:
        self.selection = selection
        self.weights: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
        """Adapter name → (A [r, I], B [O, r], scale) for this projection."""

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> Any:
        rows = self.selection.rows
        wanted = [i for i, name in enumerate(rows) if name in self.weights]
        if not wanted:
            return output
        x_BXI = args[0].reshape(len(rows), -1, args[0].shape[-1])
        out_BXO = output.reshape(len(rows), -1, output.shape[-1])
        by_adapter: dict[str, list[int]] = {}
        for i in wanted:
            by_adapter.setdefault(rows[i], []).append(i)  # type: ignore[arg-type]
        for name, indices in by_adapter.items():
            a_RI, b_OR, scale = self.weights[name]
            index = torch.tensor(indices, device=output.device)
            delta = F.linear(F.linear(x_BXI[index].to(a_RI.dtype), a_RI), b_OR) * scale
            out_BXO.index_add_(0, index, delta.to(output.dtype))
        return out_BXO.reshape(output.shape)


class AdapterSet:
    """Named PEFT adapters attached to one model for per-request selection."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names: list[str] = []
        self._selection = _Selection()
        self._hooks: dict[str, _AdapterHook] = {}

    def add(self, name: str, adapter_dir: Path) -> None:
        """Read, check and attach one adapter; a bad one raises and attaches nothing."""
        if not _NAME.match(name):
            raise ValueError(f"adapter name {name!r}: use letters, digits and ._:/- only")
        if name in self.names:
            raise ValueError(f"adapter name {name!r} is given twice")
        try:
            adapter = read_peft_lora(Path(adapter_dir))
            modules = check_fits(self.model, adapter)
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"--lora {name}={adapter_dir}: {exc}") from exc
        routed = [m for m in modules if _ROUTED_EXPERT.search(m)]
        if routed:
            raise ValueError(
                f"--lora {name}={adapter_dir}: adapts routed experts ({routed[0]}), which "
                "cannot be chosen per request; merge it with `openk2 lora-merge` and serve that"
            )
        self._attach(name, adapter, modules)
        self.names.append(name)

    def _attach(self, name: str, adapter: PeftLoRA, modules: dict[str, nn.Module]) -> None:
        weight = next(self.model.parameters())
        for path, module in modules.items():
            hook = self._hooks.get(path)
            if hook is None:
                hook = self._hooks[path] = _AdapterHook(self._selection)
                module.register_forward_hook(hook)
                _prefer_module_path(self.model, path)
            a_RI, b_OR = adapter.pairs[path]
            hook.weights[name] = (
                a_RI.to(weight.device, torch.float32),
                b_OR.to(weight.device, torch.float32),
                adapter.scale,
            )

    def select(self, rows: list[str | None]) -> None:
        """Set the adapter of each row of the next forward call."""
        self._selection.rows = rows


def _prefer_module_path(model: nn.Module, path: str) -> None:
    """An adapted `kv_b_proj` must run as a module: its MLA layer attends naively."""
    if path.endswith(".kv_b_proj"):
        mla = model.get_submodule(path.rsplit(".", 1)[0])
        mla.mode = "naive"  # type: ignore[assignment]
