"""Weight-only int8 / int4 for a loaded model: `quantize_model(model, "int8" | "int4")`.

Every bias-free, un-hooked `nn.Linear` of the text model becomes a `QuantLinear` (its float
weight is freed), except `kv_b_proj`: MLA's absorbed decode reads that weight directly to fold
it into the queries and outputs (0.8% of the `small` preset's active weights), so it stays in
the model dtype, as do the embedding, norms and the fp32 router. Layers the int4 kernel cannot
pack (out_features not a multiple of 16) stay float too; `quantize_model` returns the count of
layers it replaced so callers can tell.

The intended model dtype is bf16: the kernels compute in bf16 and every remaining float layer
is then read at half of fp32's bytes. Inference only (no gradients through `QuantLinear`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from openk2.model.layers.decode_tables import is_plain_linear
from openk2.model.layers.mlp import MLP
from openk2.model.layers.quant_linear import QuantLinear
from openk2.model.quant.packed import (
    INT4_ROW_MULTIPLE,
    WEIGHT_FORMATS,
    WeightFormat,
    packed_kernels_available,
)

QUANT_CHOICES = ("none", *WEIGHT_FORMATS)
"""What a `--quant` option accepts: none (the model dtype) or a weight format."""
KEEP_FLOAT = ("kv_b_proj",)
"""Linear layers read as weights by the model (not called as modules), so never quantized."""


def quantize_model(model: nn.Module, fmt: WeightFormat) -> int:
    """Replace the model's linear layers by `fmt` QuantLinears in place; returns how many."""
    check_quantizable(model, fmt)
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if _quantizable(name, child, fmt)
    ]
    with torch.no_grad():
        for parent, name, child in targets:
            setattr(parent, name, QuantLinear.from_linear(child, fmt))
    fuse_quantized_mlps(model)
    return len(targets)


def fuse_quantized_mlps(model: nn.Module) -> int:
    """Fuse every MLP's quantized gate and up projections (see `MLP.fuse_quantized`)."""
    return sum(m.fuse_quantized() for m in model.modules() if isinstance(m, MLP))


def check_quantizable(model: nn.Module, fmt: str) -> None:
    """Raise ValueError unless `fmt` is a weight format this model and torch build can run."""
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"weight format must be one of {WEIGHT_FORMATS}, got {fmt!r}")
    devices = {t.device.type for t in model.parameters()}
    if devices - {"cpu"}:
        raise ValueError(f"{fmt} weights run on the CPU only (model is on {sorted(devices)})")
    if not packed_kernels_available():
        raise ValueError(f"this torch build lacks working packed CPU kernels for {fmt}")


def _quantizable(name: str, module: nn.Module, fmt: WeightFormat) -> bool:
    if name in KEEP_FLOAT or not is_plain_linear(module):
        return False
    assert isinstance(module, nn.Linear)
    return fmt == "int8" or module.out_features % INT4_ROW_MULTIPLE == 0


def weight_bytes(model: nn.Module, prefix: str = "") -> tuple[int, int]:
    """(bytes, weights) of the linear layers under module names starting with `prefix`:
    QuantLinears count their codes and scales, float linears their weight."""
    total_bytes = total_weights = 0
    for name, module in model.named_modules():
        if not name.startswith(prefix):
            continue
        if isinstance(module, QuantLinear):
            total_bytes += module.nbytes()
            total_weights += module.in_features * module.out_features
        elif isinstance(module, nn.Linear):
            total_bytes += module.weight.numel() * module.weight.element_size()
            total_weights += module.weight.numel()
    return total_bytes, total_weights


def apply_quant(model: nn.Module, quant: str) -> int:
    """`quantize_model` for a `--quant` value ("none" leaves the model alone); returns the count
    of layers replaced. Layers already quantized (a checkpoint's packed INT4) are kept."""
    if quant not in QUANT_CHOICES:
        raise ValueError(f"--quant must be one of {', '.join(QUANT_CHOICES)}, got {quant!r}")
    return 0 if quant == "none" else quantize_model(model, quant)  # type: ignore[arg-type]


def int4_loading(quant: str) -> Literal["dequantize", "packed"]:
    """How `load_model` should hold a checkpoint's INT4 weights under `--quant quant`: packed
    for int4 (no float copy ever exists), decoded otherwise."""
    return "packed" if quant == "int4" else "dequantize"
