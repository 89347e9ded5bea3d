"""FSDP2 (`fully_shard`) over the dense parts of the model, and activation checkpointing.

Units: every decoder layer, the backbone (`model.model`: embeddings and final norm) and the
`lm_head`, which the training loss calls on its own (it projects only the rows that carry a
label), so it must gather its own weight. Routed experts owned under expert parallelism stay
out of FSDP (`ignored_params`): each lives on one rank and its gradient is already complete.

Gradients are *summed* across ranks (divide factor 1): each rank's loss is its share of the
global sum divided by the global target count, so the sum is the 1-process gradient.
"""

from __future__ import annotations

import types

from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.utils.checkpoint import checkpoint


def apply_fsdp(model: nn.Module, mesh: DeviceMesh, ignored: set[nn.Parameter]) -> None:
    """Shard each layer, the backbone and the head over `mesh`, leaving `ignored` params local."""
    backbone = model.model  # type: ignore[union-attr]
    units: list[nn.Module] = [*backbone.layers, backbone, model.lm_head]  # type: ignore[union-attr]
    for unit in units:
        mine = {p for p in unit.parameters() if p in ignored}
        fully_shard(unit, mesh=mesh, ignored_params=mine or None)
    for unit in units:
        assert isinstance(unit, FSDPModule)
        unit.set_gradient_divide_factor(1.0)
        unit.set_force_sum_reduction_for_comms(True)  # gloo has no pre-scaled sum


def apply_activation_checkpointing(model: nn.Module) -> int:
    """Recompute every decoder layer's activations in the backward instead of keeping them.

    The forward is wrapped per instance, so module and parameter names stay the checkpoint
    names. Returns the number of layers wrapped.
    """
    layers = model.model.layers  # type: ignore[union-attr]
    for layer in layers:
        inner = layer.forward
        layer.forward = types.MethodType(_checkpointed(inner), layer)
    return len(layers)


def _checkpointed(inner: types.MethodType) -> types.FunctionType:
    def forward(self: nn.Module, *args: object) -> object:
        return checkpoint(inner, *args, use_reentrant=False)

    return forward  # type: ignore[return-value]
