"""`openk2 inspect` and `openk2 generate`: look at a model's size, run it on token ids."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from openk2.cli import app

if TYPE_CHECKING:
    from rich.table import Table

    from openk2.model import KimiK2ForCausalLM, ModelConfig
    from openk2.model.vision import VisionConfig
    from openk2.tokenizer import Tokenizer


@app.command("inspect")
def inspect_command(
    preset: Annotated[str | None, typer.Option(help="preset name, e.g. kimi-k2.6")] = None,
    model: Annotated[Path | None, typer.Option(help="checkpoint dir (reads config.json)")] = None,
    context: Annotated[list[str] | None, typer.Option(
        help="context length(s) to cost, e.g. 256K or 2M (repeatable): cache bytes, prefill "
             "FLOPs, decode bytes per token")] = None,
) -> None:
    """Print total and active parameter counts per component (and context costs)."""
    from rich.console import Console

    config = _inspect_config(preset, model)
    vision = _inspect_vision(preset, model)
    console = Console()
    console.print(_params_table(config, title=preset or str(model), vision=vision))
    if model is not None:
        typer.echo(f"tokenizer: {_tokenizer_line(model, config.vocab_size)}")
    if context:
        lengths = [_parse_length(text) for text in context]
        console.print(_context_table(config, lengths))


def _tokenizer_line(model: Path, vocab_size: int) -> str:
    """Which tokenizer `serve`/`generate` would use for this directory, or why there is none."""
    from openk2.tokenizer import resolve_tokenizer
    from openk2.tokenizer.resolve import check_vocab_fits

    try:
        source = resolve_tokenizer(model)
        ids = source.load().vocab_size
        check_vocab_fits(ids, vocab_size, fix="serve it with a matching --tokenizer")
    except (OSError, ValueError) as exc:
        return f"none usable ({exc})"
    return f"{source.describe()}, {ids} ids"


def _inspect_vision(preset: str | None, model: Path | None) -> VisionConfig | None:
    """The vision config of a K2.5 / K2.6 checkpoint or of a same-named preset, if any."""
    from openk2.model.safetensors_io import read_config
    from openk2.model.vision import VISION_PRESETS, get_vision_preset
    from openk2.model.vision.checkpoint import vision_config_from_json

    if model is not None:
        raw = read_config(model)
        return vision_config_from_json(raw) if isinstance(raw.get("vision_config"), dict) else None
    return get_vision_preset(preset) if preset in VISION_PRESETS else None


def _inspect_config(preset: str | None, model: Path | None) -> ModelConfig:
    from openk2.model import get_preset
    from openk2.model.config import load_config

    if (preset is None) == (model is None):
        raise typer.BadParameter("pass exactly one of --preset and --model")
    if model is not None:
        try:
            return load_config(model)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from exc
    try:
        return get_preset(preset or "")
    except KeyError as exc:
        raise typer.BadParameter(exc.args[0], param_hint="--preset") from exc


def _params_table(config: ModelConfig, title: str, vision: VisionConfig | None = None) -> Table:
    from rich.table import Table

    from openk2.model.params import count_parameters, latent_cache_bytes_per_token
    from openk2.model.vision.params import count_vision_parameters

    counts = count_parameters(config)
    if vision is not None:
        counts += count_vision_parameters(vision)
    total = sum(c.total for c in counts)
    active = sum(c.active for c in counts)
    table = Table(title=f"{title}: {human_count(total)} total, {human_count(active)} active")
    for column in ("component", "total", "active", "share of total"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for c in counts:
        table.add_row(c.name, human_count(c.total), human_count(c.active), f"{c.total / total:.1%}")
    table.add_row("all", human_count(total), human_count(active), "100.0%", style="bold")
    cache = latent_cache_bytes_per_token(config)
    table.caption = (
        f"{config.num_hidden_layers} layers, d={config.hidden_size}, "
        f"{config.n_routed_experts} experts top-{config.num_experts_per_tok}, "
        f"latent cache {cache:,} B/token (bf16)"
    )
    return table


def _parse_length(text: str) -> int:
    """'262144', '256K' (x 1024) or '2M' (x 1024**2) -> tokens."""
    scale = {"K": 1024, "M": 1024**2}.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or int(digits) < 1:
        raise typer.BadParameter(f"{text!r} is not a token count like 4096, 256K or 2M",
                                 param_hint="--context")
    return int(digits) * scale


def _context_table(config: ModelConfig, lengths: list[int]) -> Table:
    from rich.table import Table

    from openk2.model.context_costs import context_costs

    table = Table(title="context costs (bf16 weights and latent cache, batch 1)")
    for column in ("context", "cache/token", "cache", "prefill FLOPs (naive | absorbed)",
                   "decode bytes/token (weights + cache)"):
        table.add_column(column, justify="right")
    for tokens in lengths:
        c = context_costs(config, tokens)
        naive = c.prefill_linear_flops + c.prefill_attention_flops_naive
        absorbed = c.prefill_linear_flops + c.prefill_attention_flops_absorbed
        decode = c.decode_weight_bytes + c.decode_cache_bytes
        table.add_row(
            f"{tokens:,}", f"{c.cache_bytes_per_token:,} B", human_bytes(c.cache_bytes),
            f"{naive:.3g} | {absorbed:.3g}",
            f"{human_bytes(decode)} = {human_bytes(c.decode_weight_bytes)} + "
            f"{human_bytes(c.decode_cache_bytes)}",
        )  # fmt: skip
    if config.max_position_embeddings < max(lengths):
        table.caption = (f"beyond max_position_embeddings {config.max_position_embeddings:,}: "
                         "the released weights were not trained there")
    return table


def human_bytes(n: int) -> str:
    """70_272 -> '68.6 KiB', 147_399_000_000 -> '137.3 GiB'."""
    for scale, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{n} B"


def human_count(n: int) -> str:
    """1_026_408_209_408 -> '1.03T', 31_687_079_936 -> '31.69B'."""
    for scale, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(n)


@app.command("generate")
def generate_command(
    model: Annotated[str, typer.Option(
        help="'embedded' (the shipped model), a preset name (random weights) or checkpoint dir"
    )],
    prompt_ids: Annotated[
        str | None, typer.Option(help="comma-separated token ids, e.g. 1,2,3")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="prompt text; output is decoded")] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="tokenizer dir; default: the checkpoint's own, the bundled one for "
                          "a preset"),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=0)] = 32,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    top_k: Annotated[int, typer.Option(min=0, help="0 = off")] = 0,
    seed: Annotated[int, typer.Option(help="seeds sampling and a preset's weights")] = 0,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16")] = "float32",
    threads: Annotated[
        int, typer.Option(min=1, help="torch CPU threads (decode is bandwidth-bound: 1 is safest)")
    ] = 1,
    decode_format: Annotated[
        str, typer.Option(help="decode weight tables: native (the dtype's) or int8 (CPU)")
    ] = "native",
    quant: Annotated[
        str,
        typer.Option(help="weight-only quantization (CPU packed kernels): none, int8 or int4; "
                          "use with --dtype bfloat16"),
    ] = "none",
) -> None:
    """Generate from token ids or text (greedy or sampled), with the latent cache."""
    import torch

    from openk2.model.generate import stream_generate
    from openk2.model.quantize import QUANT_CHOICES, apply_quant

    if (prompt_ids is None) == (prompt is None):
        raise typer.BadParameter("give exactly one of --prompt-ids or --prompt")
    if quant not in QUANT_CHOICES:
        raise typer.BadParameter(f"one of {', '.join(QUANT_CHOICES)}", param_hint="--quant")
    torch.set_num_threads(threads)
    network = _load(model, dtype, seed, quant)
    try:
        network.set_decode_format(decode_format)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--decode-format") from exc
    try:
        apply_quant(network, quant)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--quant") from exc
    text_tokenizer = None
    if prompt is not None:
        text_tokenizer = _text_tokenizer(tokenizer, model, network.config.vocab_size)
        ids = text_tokenizer.encode(prompt)
    else:
        ids = _parse_ids(prompt_ids or "")
    start = time.perf_counter()
    produced: list[int] = []
    try:
        for token in stream_generate(
            network,
            ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop_ids=None if text_tokenizer is None else text_tokenizer.stop_ids,
        ):
            produced.append(token)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    elapsed = time.perf_counter() - start
    if text_tokenizer is None:
        typer.echo(",".join(str(t) for t in produced))
    else:
        typer.echo(text_tokenizer.decode(produced))
    sys.stdout.flush()
    rate = len(produced) / elapsed if elapsed > 0 else 0.0
    print(f"{len(produced)} tokens in {elapsed:.2f} s ({rate:.1f} tok/s)", file=sys.stderr)


def _text_tokenizer(path: Path | None, model: str, vocab_size: int) -> Tokenizer:
    """The tokenizer for --prompt, by the one rule (`openk2.tokenizer.resolve`)."""
    from openk2.embedded import resolve_model
    from openk2.model import PRESETS
    from openk2.tokenizer import load_tokenizer
    from openk2.tokenizer.resolve import check_vocab_fits

    model_dir = None if model in PRESETS else resolve_model(model)
    try:
        found = load_tokenizer(model_dir, path)
        check_vocab_fits(found.vocab_size, vocab_size, fix="pass a matching --tokenizer")
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    return found


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise typer.BadParameter(f"--prompt-ids must be comma-separated integers: {exc}") from exc
    if not ids:
        raise typer.BadParameter("--prompt-ids needs at least one id")
    return ids


def _load(
    name_or_path: str, dtype_name: str, seed: int, quant: str = "none"
) -> KimiK2ForCausalLM:
    """A preset with seeded random weights, or a checkpoint directory (whose INT4 weights stay
    INT4 under `--quant int4`)."""
    from openk2.embedded import resolve_model
    from openk2.model import PRESETS, build_model, get_preset
    from openk2.model.dtypes import torch_dtype

    try:
        dtype = torch_dtype(dtype_name, what="--dtype")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dtype") from exc

    if name_or_path in PRESETS:
        return build_model(get_preset(name_or_path), dtype=dtype, seed=seed).eval()
    try:
        path = Path(resolve_model(name_or_path))
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    if not path.exists():
        raise typer.BadParameter(f"{name_or_path!r} is neither 'embedded', a preset "
                                 f"({', '.join(PRESETS)}) nor an existing path")
    return _load_checkpoint(path, dtype, quant)


def _load_checkpoint(path: Path, dtype: object, quant: str = "none") -> KimiK2ForCausalLM:
    """Load a checkpoint dir; a bad checkpoint becomes a CLI error naming file and tensor."""
    from openk2.model.quantize import int4_loading
    from openk2.model.safetensors_io import CheckpointError
    from openk2.model.weights import load_model

    try:
        return load_model(path, dtype=dtype, int4=int4_loading(quant)).eval()
    except CheckpointError as exc:
        raise typer.BadParameter(str(exc)) from exc
