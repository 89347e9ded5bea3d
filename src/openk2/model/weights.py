"""Load and save K2-family checkpoints: the one renaming table, the loader and the saver.

The model's tensor names are the K2 / K2-Thinking Hugging Face names (`model.layers.{i}...`,
`lm_head.weight`). Every other layout reaches them through `RENAME_RULES`, the only renaming
table in openk2:
- K2.5/K2.6 hub files prefix the text model with `language_model.`;
- transformers 5.23's `Kimi_K25ForConditionalGeneration.save_pretrained` writes
  `language_model.model.blocks.{i}` (its reverse conversion turns the text `layers` into the
  vision encoder's `blocks`), and its in-memory names use `model.language_model.`;
- transformers 5.23's `save_pretrained(save_original_format=False)` fuses routed experts into
  `mlp.experts.gate_up_proj [E, 2I, H]` / `mlp.experts.down_proj [E, H, I]` (split on load by
  `weight_plan`); its default `save_pretrained` writes the per-expert K2 names.
Vision tensors (`vision_tower.*`, `mm_projector.*`) are skipped on purpose: the text model has
no place for them, and the loader reports how many it skipped; `vision/checkpoint.py` loads
them into the multimodal model.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from openk2.model.config import CONFIG_NAME, load_config
from openk2.model.errors import CheckpointError
from openk2.model.layers.quant_linear import QuantLinear
from openk2.model.model import KimiK2ForCausalLM
from openk2.model.quant.int4 import Int4Weight, int4_quantization_config, quantize_int4
from openk2.model.quantize import fuse_quantized_mlps
from openk2.model.safetensors_io import CheckpointReader, read_config
from openk2.model.safetensors_writer import ShardedWriter
from openk2.model.weight_check import ExpectedTensor, check_structure, validate_plan
from openk2.model.weight_plan import (
    CheckpointPlan,
    QuantSettings,
    plan_checkpoint,
    read_int4,
    read_source,
)

log = logging.getLogger(__name__)

Layout = Literal["k2", "k25"]
Int4Loading = Literal["dequantize", "packed"]
INT4_LOADINGS: tuple[Int4Loading, ...] = ("dequantize", "packed")
"""How `load_model` holds INT4 checkpoint weights: decoded to floats, or packed (`QuantLinear`)."""

# Checkpoint name -> model name. Ordered: the first rule whose pattern matches applies.
RENAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^language_model\.model\.blocks\.(\d+)\."), r"model.layers.\1."),  # HF523 bug
    (re.compile(r"^language_model\.model\."), "model."),  # K2.5 / K2.6 hub files
    (re.compile(r"^language_model\.lm_head\."), "lm_head."),
    (re.compile(r"^model\.language_model\."), "model."),  # HF523 Kimi_K25 in-memory names
)
# Checkpoint prefixes of the vision encoder and projector (loaded by `vision/checkpoint.py`).
SKIPPED_PREFIXES = ("vision_tower.", "mm_projector.", "model.vision_tower.", "model.mm_projector.")
# Model name -> checkpoint name when saving, per layout.
SAVE_PREFIX: dict[Layout, str] = {"k2": "", "k25": "language_model."}
# Tensors kept in float32 whatever dtype is asked for (the router's selection bias).
KEEP_FP32 = ("e_score_correction_bias",)
_ROUTED_EXPERT = re.compile(r"^model\.layers\.\d+\.mlp\.experts\.\d+\.(gate|up|down)_proj\.weight$")
DEFAULT_MAX_SHARD_SIZE = "5GB"


def model_name(checkpoint_name: str) -> str | None:
    """The model tensor a checkpoint tensor loads into; None for tensors skipped on purpose."""
    if checkpoint_name.startswith(SKIPPED_PREFIXES):
        return None
    for pattern, replacement in RENAME_RULES:
        if pattern.match(checkpoint_name):
            return pattern.sub(replacement, checkpoint_name, count=1)
    return checkpoint_name


def checkpoint_name(name: str, layout: Layout = "k2") -> str:
    """The name a model tensor is saved under in `layout`."""
    return SAVE_PREFIX[layout] + name


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def iter_state_dict(
    path: str | os.PathLike[str], *, dtype: torch.dtype | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (model name, decoded tensor) for every text tensor of a checkpoint, one at a time.

    Quantized weights are dequantized (to `dtype`, or bf16 when None); plain tensors keep their
    stored dtype unless `dtype` is given. No model or config is needed beyond the
    `quantization_config` of a config.json, if one is present.
    """
    with CheckpointReader(path) as reader:
        quant = _quant_settings(reader)
        plan = _plan(reader)
        for name, src in plan.sources.items():
            yield name, read_source(reader, src, quant=quant, dtype=_target_dtype(name, dtype))


def load_state_dict(
    path: str | os.PathLike[str], *, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """All text tensors of a checkpoint under model names (see `iter_state_dict`)."""
    return dict(iter_state_dict(path, dtype=dtype))


def load_model(
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    int4: Int4Loading = "dequantize",
) -> KimiK2ForCausalLM:
    """Build the model from `path`/config.json on the meta device and fill it from the weights.

    Every tensor is checked against the model (names, shapes, dtypes) from file headers before
    any data is read; then each tensor is read from its memory-mapped file, decoded, cast and
    placed one at a time, so peak memory is the model plus one tensor. Tensors whose dtype does
    not change stay memory-mapped views of the files (page cache, no private copy): rewrite a
    checkpoint only by writing new files, as `save_model` does, never in place while loaded.

    `dtype` None means config.json's `dtype` (or `torch_dtype`), else each tensor's stored
    dtype (bf16 for quantized weights); the router's `e_score_correction_bias` stays float32.
    """
    if int4 not in INT4_LOADINGS:
        raise ValueError(f"int4 must be one of {INT4_LOADINGS}, got {int4!r}")
    if int4 == "packed" and torch.device(device).type != "cpu":
        raise ValueError("int4='packed' runs on the CPU only")
    config = load_config(path)
    dtype = dtype or _config_dtype(read_config(path))
    if dtype is not None:
        config = config.replace(dtype=str(dtype).removeprefix("torch."))
    with CheckpointReader(path) as reader:
        quant = _quant_settings(reader)
        plan = _plan(reader)
        check_structure(reader, plan, config)  # before building: a bad config fails in ms
        with torch.device("meta"):
            model = KimiK2ForCausalLM(config)
        _fill(
            model, reader, plan, config, quant, dtype=dtype, device=torch.device(device), int4=int4
        )
    return model.eval()


def _config_dtype(raw_config: dict[str, Any]) -> torch.dtype | None:
    """The float dtype a config.json names for the text model (K2.5: in text_config), if any."""
    for source in (raw_config.get("text_config") or {}, raw_config):
        name = source.get("dtype") or source.get("torch_dtype")
        if name is not None:
            dtype = getattr(torch, str(name).removeprefix("torch."), None)
            if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
                return dtype
    return None


def _fill(
    model: nn.Module,
    reader: CheckpointReader,
    plan: CheckpointPlan,
    config: Any,
    quant: QuantSettings,
    *,
    dtype: torch.dtype | None,
    device: torch.device,
    int4: Int4Loading = "dequantize",
) -> None:
    """Validate the checkpoint against `model`, then load every tensor into it."""
    expected = {
        name: ExpectedTensor(tuple(t.shape), t.dtype) for name, t in model.state_dict().items()
    }
    validate_plan(reader, plan, expected, config, quant)
    for name, src in plan.sources.items():
        if src.kind == "int4" and int4 == "packed":
            _assign_int4(model, name, read_int4(reader, src))
            continue
        target = _target_dtype(name, dtype)
        tensor = read_source(reader, src, quant=quant, dtype=target, device=device)
        _assign(model, name, tensor)
    _check_materialised(model)
    if int4 == "packed":
        fuse_quantized_mlps(model)


def _plan(reader: CheckpointReader) -> CheckpointPlan:
    """The checkpoint's plan, logging the vision tensors it deliberately leaves out."""
    plan = plan_checkpoint(reader, model_name)
    if plan.skipped:
        log.info(
            "%s: skipped %d vision tensors (%s...); they load with vision.load_multimodal",
            reader.path,
            len(plan.skipped),
            plan.skipped[0],
        )
    return plan


def _quant_settings(reader: CheckpointReader) -> QuantSettings:
    """Quantization parameters from the checkpoint's config.json (defaults without one)."""
    config_file = reader.root / CONFIG_NAME
    if not config_file.is_file():
        return QuantSettings()
    return QuantSettings.from_config(read_config(reader.root), str(config_file))


def _target_dtype(name: str, dtype: torch.dtype | None) -> torch.dtype | None:
    """The dtype one tensor loads as (None: as stored)."""
    if name.endswith(KEEP_FP32):
        return torch.float32
    return dtype


def _assign(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Replace the meta parameter/buffer `name` by `tensor` (no copy)."""
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name)
    if leaf in module._parameters:
        old = module._parameters[leaf]
        requires_grad = old.requires_grad if old is not None else True
        module._parameters[leaf] = nn.Parameter(tensor, requires_grad=requires_grad)
    else:
        module._buffers[leaf] = tensor


def _assign_int4(model: nn.Module, name: str, weight: Int4Weight) -> None:
    """Replace the (meta) linear owning weight `name` by a QuantLinear of the stored INT4."""
    module_name, _, leaf = name.rpartition(".")
    if leaf != "weight":
        raise CheckpointError(f"INT4 tensor {name!r} is not a linear weight", tensor=name)
    parent_name, _, child = module_name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, QuantLinear.from_int4(weight))


def _check_materialised(model: nn.Module) -> None:
    """Every parameter and buffer came from the checkpoint (RoPE tables are not tensors here)."""
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"tensors still on the meta device after loading: {left[:5]}")


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def save_model(
    model: KimiK2ForCausalLM,
    path: str | os.PathLike[str],
    *,
    int4_experts: bool = False,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    layout: Layout = "k2",
) -> list[Path]:
    """Write `model` as a Hugging Face checkpoint directory: config.json + safetensors shards.

    `int4_experts` stores the routed experts in compressed-tensors pack-quantized INT4 (group 32,
    bf16 scales) and writes the matching `quantization_config`. `layout` "k2" writes
    `model.layers...` names (K2 / K2-Thinking); "k25" writes `language_model.`-prefixed names and
    a `kimi_k25` config with a `text_config`, as K2.5/K2.6 ship. Returns the shard paths.
    """
    out_dir = Path(path)
    with ShardedWriter(out_dir, max_shard_size=max_shard_size) as writer:
        for name, tensor in model.state_dict().items():
            for key, value in _saved_tensors(name, tensor, int4_experts):
                writer.add(checkpoint_name(key, layout), value)
    files = sorted(out_dir.glob("model*.safetensors"))
    config = _saved_config(model, int4_experts=int4_experts, layout=layout)
    (out_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return files


def _saved_tensors(
    name: str, tensor: torch.Tensor, int4_experts: bool
) -> Iterator[tuple[str, torch.Tensor]]:
    """The stored tensors of one model tensor: itself, or its three INT4 parts."""
    if not (int4_experts and _ROUTED_EXPERT.match(name)):
        yield name, tensor
        return
    quantized = quantize_int4(tensor.detach().to("cpu"))
    base = name.removesuffix(".weight")
    yield f"{base}.weight_packed", quantized.weight_packed
    yield f"{base}.weight_scale", quantized.weight_scale
    yield f"{base}.weight_shape", quantized.weight_shape


def _saved_config(
    model: KimiK2ForCausalLM, *, int4_experts: bool, layout: Layout
) -> dict[str, Any]:
    """config.json for the saved layout: the model's config, its real dtype and quantization."""
    text = model.config.to_hf_json()
    text.pop("quantization_config", None)
    text["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    if int4_experts:
        text["quantization_config"] = int4_quantization_config()
    if layout == "k2":
        return text
    text = {**text, "model_type": "kimi_k2", "architectures": ["DeepseekV3ForCausalLM"]}
    wrapper: dict[str, Any] = {
        "architectures": ["KimiK25ForConditionalGeneration"],
        "model_type": "kimi_k25",
        "tie_word_embeddings": False,
        "text_config": text,
    }
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "dtype", "quantization_config"):
        if key in text:
            wrapper[key] = text[key]
    return wrapper
