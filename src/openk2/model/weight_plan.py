"""Which checkpoint tensors make each model tensor, and how to decode them.

`plan_checkpoint` turns a checkpoint's tensor names into one `TensorSource` per model tensor,
using only headers: names are renamed by the table in `weights.py`, quantized companions
(`weight_packed`/`weight_scale`/`weight_shape`, `weight_scale_inv`) are grouped with their
weight, and transformers' fused expert tensors are split into per-expert slices. `read_source`
then reads and decodes one tensor at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from openk2.model.quant.fp8 import FP8_DTYPE, dequantize_fp8_block, fp8_block_size
from openk2.model.quant.int4 import Int4Weight, dequantize_int4, int4_group_size
from openk2.model.safetensors_io import CheckpointError, CheckpointReader

SourceKind = Literal["plain", "int4", "fp8"]

_QUANT_PART = re.compile(r"^(.*)\.(weight_packed|weight_scale|weight_shape|weight_scale_inv)$")
_UNSUPPORTED_PART = re.compile(
    r"\.(weight_zero_point|weight_global_scale|input_scale|input_global_scale|weight_g_idx)$"
)
_FUSED_GATE_UP = re.compile(r"^(.*\.mlp\.experts)\.gate_up_proj$")
_FUSED_DOWN = re.compile(r"^(.*\.mlp\.experts)\.down_proj$")


@dataclass(frozen=True, slots=True)
class TensorSource:
    """Where one model tensor lives in the checkpoint and how it is stored.

    keys: the checkpoint names read: (weight,) plain; (packed, scale, shape) int4;
        (weight, scale_inv) fp8.
    index: for transformers' fused experts, the slice of the fused tensor that is this tensor.
    """

    kind: SourceKind
    keys: tuple[str, ...]
    index: tuple[Any, ...] | None = None


@dataclass(slots=True)
class CheckpointPlan:
    """Model-name -> source for every text tensor, plus the tensors deliberately left out."""

    sources: dict[str, TensorSource] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QuantSettings:
    """Quantization parameters from config.json (None where the config does not say)."""

    int4_group_size: int | None = None
    fp8_block: tuple[int, int] = (128, 128)

    @classmethod
    def from_config(cls, config: dict[str, Any], config_file: str) -> QuantSettings:
        """Read (and validate) the `quantization_config` of a raw config.json dict."""
        text = config.get("text_config")
        quant = config.get("quantization_config") or (
            text.get("quantization_config") if isinstance(text, dict) else None
        )
        if not quant:
            return cls()
        if not isinstance(quant, dict):
            raise CheckpointError(
                f"quantization_config must be a JSON object, got {quant!r}", file=config_file
            )
        method = quant.get("quant_method")
        try:
            if method == "compressed-tensors":
                return cls(int4_group_size=int4_group_size(quant))
            if method == "fp8":
                return cls(fp8_block=fp8_block_size(quant))
        except ValueError as exc:
            raise CheckpointError(f"quantization_config: {exc}", file=config_file) from exc
        raise CheckpointError(
            f"unsupported quantization_config quant_method {method!r}", file=config_file
        )


def plan_checkpoint(
    reader: CheckpointReader, rename: Callable[[str], str | None]
) -> CheckpointPlan:
    """Map every checkpoint tensor to the model tensor it makes (`rename` None = skip it)."""
    plan = CheckpointPlan()
    parts: dict[str, dict[str, str]] = {}  # model weight name -> {quant part: checkpoint key}
    for key in reader.names:
        name = rename(key)
        if name is None:
            plan.skipped.append(key)
        elif _UNSUPPORTED_PART.search(name):
            raise CheckpointError(
                "unsupported quantization tensor (asymmetric/activation "
                "quantization is not supported)",
                file=reader.info(key).file,
                tensor=key,
            )
        elif match := _QUANT_PART.match(name):
            parts.setdefault(f"{match[1]}.weight", {})[match[2]] = key
        elif _FUSED_GATE_UP.match(name) or _FUSED_DOWN.match(name):
            _add_fused_experts(plan, reader, key, name)
        else:
            _add(plan, reader, name, TensorSource("plain", (key,)))
    for name, found in parts.items():
        _add_quantized(plan, reader, name, found)
    return plan


def _add(plan: CheckpointPlan, reader: CheckpointReader, name: str, src: TensorSource) -> None:
    previous = plan.sources.get(name)
    if previous is not None:
        raise CheckpointError(
            f"it and '{previous.keys[0]}' both map to model tensor '{name}'",
            file=reader.info(src.keys[0]).file,
            tensor=src.keys[0],
        )
    plan.sources[name] = src


def _add_fused_experts(plan: CheckpointPlan, reader: CheckpointReader, key: str, name: str) -> None:
    """Split transformers' fused [E, 2I, H] gate_up / [E, H, I] down tensors per expert."""
    info = reader.info(key)
    if len(info.shape) != 3:
        raise CheckpointError(
            f"fused expert tensor must be 3-D, has shape {list(info.shape)}",
            file=info.file,
            tensor=key,
        )
    n_experts, rows = info.shape[0], info.shape[1]
    if match := _FUSED_GATE_UP.match(name):
        if rows % 2:
            raise CheckpointError(
                f"fused gate_up has an odd row count {rows}", file=info.file, tensor=key
            )
        half = rows // 2  # cat(gate, up) along the output dim
        for e in range(n_experts):
            base = f"{match[1]}.{e}"
            _add(
                plan,
                reader,
                f"{base}.gate_proj.weight",
                TensorSource("plain", (key,), (e, slice(0, half))),
            )
            _add(
                plan,
                reader,
                f"{base}.up_proj.weight",
                TensorSource("plain", (key,), (e, slice(half, rows))),
            )
    else:
        prefix = name.removesuffix(".down_proj")
        for e in range(n_experts):
            _add(
                plan, reader, f"{prefix}.{e}.down_proj.weight", TensorSource("plain", (key,), (e,))
            )


def _add_quantized(
    plan: CheckpointPlan, reader: CheckpointReader, name: str, found: dict[str, str]
) -> None:
    """Group a weight's quantization companions into one int4 or fp8 source."""
    any_key = next(iter(found.values()))
    file = reader.info(any_key).file
    if "weight_scale_inv" in found:
        plain = plan.sources.pop(name, None)
        if plain is None or len(found) != 1:
            raise CheckpointError(
                f"fp8 scale without its weight '{name}' (or mixed with INT4 tensors)",
                file=file,
                tensor=any_key,
            )
        _add(plan, reader, name, TensorSource("fp8", (plain.keys[0], found["weight_scale_inv"])))
        return
    missing = [p for p in ("weight_packed", "weight_scale", "weight_shape") if p not in found]
    if missing:
        raise CheckpointError(
            f"INT4 weight is incomplete: {', '.join(name[:-6] + m for m in missing)} missing",
            file=file,
            tensor=any_key,
        )
    keys = (found["weight_packed"], found["weight_scale"], found["weight_shape"])
    _add(plan, reader, name, TensorSource("int4", keys))


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes and decoding of one source
# ---------------------------------------------------------------------------------------------


def source_shape(reader: CheckpointReader, src: TensorSource) -> tuple[int, ...]:
    """The decoded tensor's shape (reads only the tiny weight_shape tensor of INT4 weights)."""
    if src.kind == "int4":
        return _int4_shape(reader, src)
    shape = reader.info(src.keys[0]).shape
    if src.index is None:
        return shape
    rest = shape[1:]
    if len(src.index) == 2:
        rows = src.index[1]
        return (rows.stop - rows.start, *rest[1:])
    return rest


def _int4_shape(reader: CheckpointReader, src: TensorSource) -> tuple[int, int]:
    info = reader.info(src.keys[2])
    if info.dtype.is_floating_point or info.shape != (2,):
        raise CheckpointError(
            f"weight_shape must be 2 integers, is {info.dtype} {list(info.shape)}",
            file=info.file,
            tensor=info.name,
        )
    out_features, in_features = (int(v) for v in reader.get(src.keys[2]).tolist())
    return out_features, in_features


def check_source_dtypes(
    reader: CheckpointReader, src: TensorSource, shape: tuple[int, ...], quant: QuantSettings
) -> None:
    """Raise naming the tensor if a stored dtype or companion shape cannot decode to `shape`."""
    first = reader.info(src.keys[0])
    if src.kind == "plain":
        if first.dtype == FP8_DTYPE:
            _fail(first, "float8 weight without its weight_scale_inv")
        if not first.dtype.is_floating_point:
            _fail(first, f"wrong dtype {first.dtype}: expected a floating-point tensor")
    elif src.kind == "int4":
        _check_int4(reader, src, shape, quant)
    else:
        _check_fp8(reader, src, shape, quant)


def _check_int4(
    reader: CheckpointReader, src: TensorSource, shape: tuple[int, ...], quant: QuantSettings
) -> None:
    packed, scale = reader.info(src.keys[0]), reader.info(src.keys[1])
    out_features, in_features = shape
    if packed.dtype != torch.int32:
        _fail(packed, f"wrong dtype {packed.dtype}: weight_packed must be int32")
    if packed.shape != (out_features, in_features // 8) or in_features % 8:
        _fail(packed, f"shape {list(packed.shape)} does not hold weight_shape {list(shape)}")
    if not scale.dtype.is_floating_point:
        _fail(scale, f"wrong dtype {scale.dtype}: weight_scale must be floating point")
    groups = scale.shape[1] if len(scale.shape) == 2 else 0
    if scale.shape[:1] != (out_features,) or not groups or in_features % groups:
        _fail(scale, f"shape {list(scale.shape)} does not fit weight_shape {list(shape)}")
    if quant.int4_group_size is not None and in_features // groups != quant.int4_group_size:
        _fail(
            scale,
            f"group size {in_features // groups} differs from config.json's "
            f"group_size {quant.int4_group_size}",
        )


def _check_fp8(
    reader: CheckpointReader, src: TensorSource, shape: tuple[int, ...], quant: QuantSettings
) -> None:
    weight, scale_inv = reader.info(src.keys[0]), reader.info(src.keys[1])
    if weight.dtype != FP8_DTYPE:
        _fail(
            weight,
            f"wrong dtype {weight.dtype}: a weight with weight_scale_inv must be float8_e4m3fn",
        )
    if not scale_inv.dtype.is_floating_point:
        _fail(scale_inv, f"wrong dtype {scale_inv.dtype}: weight_scale_inv must be float")
    (block_o, block_i), (rows, cols) = quant.fp8_block, shape
    expected = (-(-rows // block_o), -(-cols // block_i))
    if scale_inv.shape != expected:
        _fail(
            scale_inv,
            f"shape {list(scale_inv.shape)}, expected {list(expected)} for "
            f"{block_o}x{block_i} blocks of {list(shape)}",
        )


def _fail(info: Any, problem: str) -> None:
    raise CheckpointError(problem, file=info.file, tensor=info.name)


def read_int4(reader: CheckpointReader, src: TensorSource) -> Int4Weight:
    """The stored (packed, scale, shape) tensors of one INT4 weight, undecoded, on the CPU."""
    packed, scale, shape = (
        reader.get(key, src.index if i == 0 else None) for i, key in enumerate(src.keys)
    )
    return Int4Weight(weight_packed=packed, weight_scale=scale, weight_shape=shape)


def read_source(
    reader: CheckpointReader,
    src: TensorSource,
    *,
    quant: QuantSettings,
    dtype: torch.dtype | None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Read and decode one model tensor; `dtype` None keeps the stored float dtype."""
    raw = [reader.get(key, src.index if i == 0 else None) for i, key in enumerate(src.keys)]
    raw = [t.to(device) for t in raw]
    if src.kind == "plain":
        return raw[0] if dtype is None else raw[0].to(dtype)
    if src.kind == "int4":
        shape = (int(raw[2][0]), int(raw[2][1]))
        return dequantize_int4(raw[0], raw[1], shape, dtype=dtype or raw[1].dtype)
    return dequantize_fp8_block(
        raw[0], raw[1], block=quant.fp8_block, dtype=dtype or torch.bfloat16
    )
