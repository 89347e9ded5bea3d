"""Check a checkpoint plan against the model a config.json builds, before reading any data.

Errors name the file and tensor and, where the cause is likely a config.json that does not
describe these weights, the config fields involved and their values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from openk2.model.safetensors_io import CheckpointError, CheckpointReader
from openk2.model.weight_plan import (
    CheckpointPlan,
    QuantSettings,
    TensorSource,
    check_source_dtypes,
    source_shape,
)

# Model-name pattern -> the config fields that decide that tensor's shape.
SHAPE_FIELDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"(embed_tokens|lm_head)\.weight$"), ("vocab_size", "hidden_size")),
    (re.compile(r"q_a_proj\.weight$"), ("q_lora_rank", "hidden_size")),
    (re.compile(r"q_a_layernorm\.weight$"), ("q_lora_rank",)),
    (
        re.compile(r"q_b_proj\.weight$"),
        ("num_attention_heads", "qk_nope_head_dim", "qk_rope_head_dim", "q_lora_rank"),
    ),
    (
        re.compile(r"kv_a_proj_with_mqa\.weight$"),
        ("kv_lora_rank", "qk_rope_head_dim", "hidden_size"),
    ),
    (re.compile(r"kv_a_layernorm\.weight$"), ("kv_lora_rank",)),
    (
        re.compile(r"kv_b_proj\.weight$"),
        ("num_attention_heads", "qk_nope_head_dim", "v_head_dim", "kv_lora_rank"),
    ),
    (re.compile(r"o_proj\.weight$"), ("hidden_size", "num_attention_heads", "v_head_dim")),
    (
        re.compile(r"mlp\.gate\.(weight|e_score_correction_bias)$"),
        ("n_routed_experts", "hidden_size"),
    ),
    (re.compile(r"experts\.\d+\.\w+_proj\.weight$"), ("moe_intermediate_size", "hidden_size")),
    (
        re.compile(r"shared_experts\.\w+_proj\.weight$"),
        ("moe_intermediate_size", "n_shared_experts", "hidden_size"),
    ),
    (re.compile(r"mlp\.\w+_proj\.weight$"), ("intermediate_size", "hidden_size")),
    (re.compile(r"norm\.weight$"), ("hidden_size",)),
)
_LAYER = re.compile(r"^model\.layers\.(\d+)\.")
_EXPERT = re.compile(r"\.experts\.(\d+)\.")
_SHOWN = 5  # names listed in a missing/unexpected error


@dataclass(frozen=True, slots=True)
class ExpectedTensor:
    """What the model needs for one tensor name."""

    shape: tuple[int, ...]
    dtype: torch.dtype


def validate_plan(
    reader: CheckpointReader,
    plan: CheckpointPlan,
    expected: dict[str, ExpectedTensor],
    config: Any,
    quant: QuantSettings,
) -> None:
    """Raise a `CheckpointError` for the first missing, unexpected or ill-shaped tensor."""
    _check_unexpected(reader, plan, expected, config)
    _check_missing(reader, plan, expected, config)
    for name, want in expected.items():
        src = plan.sources[name]
        shape = source_shape(reader, src)
        if shape != want.shape:
            _shape_error(reader, name, src, shape, want.shape, config)
        check_source_dtypes(reader, src, shape, quant)


def _check_unexpected(
    reader: CheckpointReader, plan: CheckpointPlan, expected: dict[str, Any], config: Any
) -> None:
    extra = [name for name in plan.sources if name not in expected]
    if not extra:
        return
    key = plan.sources[extra[0]].keys[0]
    raise CheckpointError(
        f"unexpected: the model built from config.json has no tensor '{extra[0]}' "
        f"({len(extra)} unexpected in all: {_listing(extra)})"
        f"{_structure_hint(extra, config, plan)}",
        file=reader.info(key).file,
        tensor=key,
    )


def _check_missing(
    reader: CheckpointReader, plan: CheckpointPlan, expected: dict[str, Any], config: Any
) -> None:
    missing = [name for name in expected if name not in plan.sources]
    if not missing:
        return
    raise CheckpointError(
        f"missing: the model built from config.json needs this tensor and the checkpoint does "
        f"not have it ({len(missing)} missing in all: {_listing(missing)})"
        f"{_structure_hint(missing, config, plan)}",
        file=reader.path,
        tensor=missing[0],
    )


def _shape_error(
    reader: CheckpointReader,
    name: str,
    src: TensorSource,
    shape: tuple[int, ...],
    want: tuple[int, ...],
    config: Any,
) -> None:
    fields = next((f for pattern, f in SHAPE_FIELDS if pattern.search(name)), ())
    values = ", ".join(f"{f}={getattr(config, f, '?')}" for f in fields)
    hint = f"; config.json ({values}) does not match the weights" if values else ""
    key = src.keys[0]
    raise CheckpointError(
        f"wrong shape {list(shape)} for model tensor '{name}', the model expects {list(want)}"
        f"{hint}",
        file=reader.info(key).file,
        tensor=key,
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (", ..." if len(names) > _SHOWN else "")


def _structure_hint(names: list[str], config: Any, plan: CheckpointPlan) -> str:
    """Name the config field that most likely explains a set of missing/unexpected tensors."""
    layers = {int(m[1]) for n in names if (m := _LAYER.match(n))}
    present = {int(m[1]) for n in plan.sources if (m := _LAYER.match(n))}
    experts = {int(m[1]) for n in names if (m := _EXPERT.search(n))}
    n_layers = getattr(config, "num_hidden_layers", None)
    if n_layers is not None and any(i >= n_layers or i not in present for i in layers):
        return (
            f"; config.json num_hidden_layers={n_layers}, the weights have "
            f"{max(present, default=-1) + 1} layers"
        )
    if experts:
        return f"; check config.json n_routed_experts={getattr(config, 'n_routed_experts', '?')}"
    if any(".mlp.gate." in n or ".mlp.gate_proj." in n for n in names):
        dense = getattr(config, "first_k_dense_replace", "?")
        return f"; check config.json first_k_dense_replace={dense} (dense vs MoE layers)"
    return ""
