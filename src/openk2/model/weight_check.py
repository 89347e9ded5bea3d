"""Check a checkpoint plan against the model a config.json builds, before reading any data.

Errors name the file and tensor and, where the cause is likely a config.json that does not
describe these weights, the config fields involved and their values. `check_structure` runs
first, on names and headers alone, before any model is built: building follows the config, so a
config that claims 100,000 layers must be caught by comparing it with the weights, not by
building it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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

# Model tensors whose shapes `check_structure` compares with config.json, as config -> shape.
KEY_SHAPES: dict[str, Callable[[Any], tuple[int, ...]]] = {
    "model.embed_tokens.weight": lambda c: (c.vocab_size, c.hidden_size),
    "lm_head.weight": lambda c: (c.vocab_size, c.hidden_size),
    "model.norm.weight": lambda c: (c.hidden_size,),
    "model.layers.0.self_attn.kv_a_proj_with_mqa.weight": lambda c: (
        c.kv_lora_rank + c.qk_rope_head_dim,
        c.hidden_size,
    ),
}


@dataclass(frozen=True, slots=True)
class ExpectedTensor:
    """What the model needs for one tensor name."""

    shape: tuple[int, ...]
    dtype: torch.dtype


def check_structure(reader: CheckpointReader, plan: CheckpointPlan, config: Any) -> None:
    """Layer count, key widths and expert count of config.json against the checkpoint's names.

    Costs what the names cost (no tensor data, nothing sized by the config is built), so a
    config that disagrees with the weights fails at once, however large it claims to be.
    """
    _check_layer_count(reader, plan, config)
    for name, shape_of in KEY_SHAPES.items():
        src = plan.sources.get(name)
        if src is not None and src.kind != "int4":
            shape, want = source_shape(reader, src), shape_of(config)
            if shape != want:
                _shape_error(reader, name, src, shape, want, config)
    _check_expert_count(reader, plan, config)


def _check_layer_count(reader: CheckpointReader, plan: CheckpointPlan, config: Any) -> None:
    present = {int(m[1]) for n in plan.sources if (m := _LAYER.match(n))}
    found, wanted = max(present, default=-1) + 1, config.num_hidden_layers
    if found == wanted:
        return
    first = f"model.layers.{min(found, wanted)}."
    tensor = next((plan.sources[n].keys[0] for n in plan.sources if n.startswith(first)), None)
    span = f"model.layers.{min(found, wanted)}-{max(found, wanted) - 1}"
    fate = "are missing from the weights" if wanted > found else "are not in the model"
    raise CheckpointError(
        f"config.json num_hidden_layers={wanted}, the weights have {found} layers: {span} "
        f"{fate}; this config.json does not describe these weights",
        file=reader.path,
        tensor=tensor,
    )


def _check_expert_count(reader: CheckpointReader, plan: CheckpointPlan, config: Any) -> None:
    """The first MoE layer holds exactly n_routed_experts routed experts."""
    layer = next(
        (i for i in range(config.first_k_dense_replace, config.num_hidden_layers)
         if config.is_moe_layer(i)),
        None,
    )  # fmt: skip
    if layer is None:
        return
    prefix = f"model.layers.{layer}.mlp.experts."
    experts = {int(m[1]) for n in plan.sources if n.startswith(prefix) and (m := _EXPERT.search(n))}
    if len(experts) != config.n_routed_experts:
        raise CheckpointError(
            f"config.json n_routed_experts={config.n_routed_experts} (first MoE layer "
            f"{layer}, first_k_dense_replace={config.first_k_dense_replace}), the weights have "
            f"{len(experts)} routed experts in that layer",
            file=reader.path,
        )


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
