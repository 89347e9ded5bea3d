"""`openk2 convert`: write a Hugging Face checkpoint (or a llama.cpp GGUF) from a checkpoint.

`--to gguf` writes one GGUF file for llama.cpp / ollama (`openk2.export.gguf`): tensors in
f32, f16, bf16, q8_0, q4_0 or q4_k_m, the tokenizer and the K2.6 chat template. Otherwise,
converting re-lays a checkpoint (K2.5/K2.6 `language_model.` names, transformers' fused experts,
INT4 or FP8 weights) into openk2's layout, optionally in another dtype or with INT4 routed
experts. A preset name writes a seeded random model: a real, loadable checkpoint for tests and
demos.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from openk2.cli import app

if TYPE_CHECKING:
    import torch

    from openk2.model import KimiK2ForCausalLM, ModelConfig


@app.command()
def convert(
    model: Annotated[
        str, typer.Option(help="Checkpoint directory/file, 'embedded', or a preset name.")
    ],
    out: Annotated[Path, typer.Option(help="Output checkpoint directory (a .gguf file for gguf).")],
    to: Annotated[str, typer.Option(help="safetensors (HF checkpoint) or gguf (llama.cpp).")] = (
        "safetensors"
    ),
    quant: Annotated[
        str, typer.Option(help="gguf: f32, f16, bf16, q8_0, q4_0 or q4_k_m (llama.cpp quantizer).")
    ] = "f16",
    int4_experts: Annotated[
        bool, typer.Option("--int4-experts", help="Store routed experts as INT4 pack-quantized.")
    ] = False,
    dtype: Annotated[
        str | None,
        typer.Option(help="float32, bfloat16 or float16 (default: keep the checkpoint's; "
                          "presets bfloat16)."),
    ] = None,
    layout: Annotated[
        str, typer.Option(help="k2 (model.*) or k25 (language_model.*) names.")
    ] = "k2",
    max_shard_size: Annotated[str, typer.Option(help="Largest shard, e.g. 5GB or 500MiB.")] = "5GB",
    seed: Annotated[int, typer.Option(help="Seed of a preset's random weights.")] = 0,
) -> None:
    """Write MODEL as a safetensors checkpoint (config.json + shards) into OUT, or as a GGUF."""
    from openk2.model.weights import save_model

    model = _resolve_embedded(model)
    if to == "gguf":
        if int4_experts or dtype is not None or layout != "k2":
            raise typer.BadParameter("--int4-experts, --dtype and --layout are for safetensors "
                                     "output; a GGUF's tensor types come from --quant",
                                     param_hint="--to")
        _convert_gguf(model, out, quant)
        return
    if to != "safetensors":
        raise typer.BadParameter("use safetensors or gguf", param_hint="--to")
    if layout not in ("k2", "k25"):
        raise typer.BadParameter("use k2 or k25", param_hint="--layout")
    loaded = _load_or_build(model, _dtype_option(dtype), seed)
    files = save_model(
        loaded, out, int4_experts=int4_experts, max_shard_size=max_shard_size, layout=layout
    )
    size = sum(f.stat().st_size for f in files)
    typer.echo(f"wrote {len(files)} shard(s), {size / 2**20:.1f} MiB, to {out}")


def _dtype_option(name: str | None) -> torch.dtype | None:
    """--dtype in the shared vocabulary (`openk2.model.dtypes`); None keeps the checkpoint's."""
    from openk2.model.dtypes import torch_dtype

    if name is None:
        return None
    try:
        return torch_dtype(name, what="--dtype")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dtype") from exc


def _resolve_embedded(source: str) -> str:
    from openk2.embedded import resolve_model

    try:
        return resolve_model(source)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc


def _convert_gguf(source: str, out: Path, quant: str) -> None:
    """One GGUF from a checkpoint directory that holds its tokenizer (`tiktoken.model`)."""
    from openk2.export.gguf import QUANTS, GGUFExportError, export_gguf
    from openk2.model.errors import ConfigError
    from openk2.model.safetensors_io import CheckpointError
    from openk2.tokenizer.bpe_file import VOCAB_FILENAME, VocabFileError

    if quant not in QUANTS:
        raise typer.BadParameter(f"use one of {', '.join(QUANTS)}", param_hint="--quant")
    model_dir = Path(source)
    if not (model_dir / VOCAB_FILENAME).is_file():
        raise typer.BadParameter(
            f"{source!r} is not a checkpoint directory with a {VOCAB_FILENAME}: a GGUF carries "
            "the tokenizer, so --to gguf needs 'embedded' or such a directory (write a preset "
            "with `openk2 convert --model PRESET --out DIR` and add its tokenizer first)",
            param_hint="--model")
    if out.suffix != ".gguf":
        raise typer.BadParameter(f"{out} should be a .gguf file", param_hint="--out")
    try:
        result = export_gguf(model_dir, out, quant)
    except (GGUFExportError, CheckpointError, ConfigError, VocabFileError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"wrote {result.tensors} tensors, {result.size_bytes / 2**20:.1f} MiB, "
               f"{quant}, to {out}")


def _load_or_build(source: str, dtype: torch.dtype | None, seed: int) -> KimiK2ForCausalLM:
    """Load a checkpoint path, or build a seeded random model from a preset name."""
    import torch

    from openk2.model import PRESETS, build_model, get_preset
    from openk2.model.safetensors_io import CheckpointError
    from openk2.model.weights import load_model

    if Path(source).exists():
        try:
            return load_model(source, dtype=dtype)
        except CheckpointError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from exc
    if source not in PRESETS:
        raise typer.BadParameter(
            f"{source!r} is neither a path nor a preset ({', '.join(PRESETS)})",
            param_hint="--model",
        )
    config = get_preset(source)
    dtype = dtype or torch.bfloat16
    _check_memory(config, dtype)
    return build_model(config, dtype=dtype, seed=seed)


def _check_memory(config: ModelConfig, dtype: torch.dtype) -> None:
    """Refuse presets that cannot fit in RAM (kimi-k2.6 is ~2 TB in bf16) before allocating."""
    import psutil
    import torch

    from openk2.model import KimiK2ForCausalLM

    with torch.device("meta"):
        meta = KimiK2ForCausalLM(config)
    need = sum(p.numel() for p in meta.parameters()) * dtype.itemsize
    have = psutil.virtual_memory().available
    if need > have:
        raise typer.BadParameter(
            f"the preset needs {need / 2**30:.1f} GiB in memory, {have / 2**30:.1f} GiB available",
            param_hint="--model",
        )
