"""Build and run the server: a checkpoint directory or a preset name -> engine -> app -> uvicorn.

A preset name serves a randomly initialised model (seeded, so every run is the same) with the
bundled 8192-id tokenizer; the preset's vocabulary is resized to the tokenizer's. That lets the
whole stack run with no weights at all; `vision` adds a random MoonViT-3D tower of that preset.
A checkpoint directory serves with its own tokenizer files (`openk2.tokenizer.resolve`: the one
rule every command uses), or `--tokenizer`; one whose config.json has a `vision_config` (the
K2.5 / K2.6 layout) loads as the multimodal model and takes images and video.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI

from openk2.engine.async_engine import AsyncLLMEngine
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.lora import AdapterSet
from openk2.serve.api import create_app
from openk2.serve.media import MediaConfig
from openk2.serve.state import ConcurrencyLimiter, ServerState

log = logging.getLogger(__name__)
MAX_RANDOM_PARAMS = 4_000_000_000
"""Presets above this size are refused: a random model that large serves no purpose."""


@dataclass(kw_only=True, slots=True)
class ServeConfig:
    """Everything `openk2 serve` needs to start."""

    model: str
    """A preset name (debug, tiny, small, ...) or a checkpoint directory."""
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: list[str] = field(default_factory=list)
    """Accepted bearer keys for /v1; empty means no authentication."""
    served_model_name: str | None = None
    """Name clients use in `model`; defaults to the preset name or directory name."""
    max_concurrency: int | None = None
    """Requests in flight before the server answers 429."""
    seed: int = 0
    """Seed of a preset's random weights."""
    dtype: str = "float32"
    """Weights dtype: float32, bfloat16 or float16 (`openk2.model.dtypes`)."""
    quant: str = "none"
    """Weight-only quantization of the linear layers: none, int8 or int4 (`model.quantize`;
    CPU; a checkpoint's INT4 experts then load packed, never as floats)."""
    tokenizer: str | None = None
    """Tokenizer directory or file; default: the checkpoint's own, the bundled one for presets."""
    device: str = "cpu"
    threads: int | None = None
    """torch threads for the engine; default leaves one core to the HTTP event loop."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    rope_factor: float | None = None
    """Research override of the YaRN factor (changes every layer's logit scale; logged)."""
    max_position_embeddings: int | None = None
    """Research override of the model's position limit (lets --max-model-len go higher)."""
    lora: dict[str, str] = field(default_factory=dict)
    """LoRA adapters (PEFT folders) served over the base, by the name requests send as `model`."""
    vision: str | None = None
    """With a preset: add a random vision tower of this vision preset (`debug`, `kimi-k2.6`)."""
    media: MediaConfig = field(default_factory=MediaConfig)
    """Image / video request limits and sources (multimodal models)."""


def load_model_and_tokenizer(cfg: ServeConfig) -> tuple[Any, Any, str]:
    """(model, tokenizer, default served name) for a preset or a checkpoint directory."""
    from openk2.embedded import EMBEDDED, resolve_model
    from openk2.model import PRESETS

    if cfg.model in PRESETS:
        return _preset(cfg)
    if cfg.vision is not None:
        raise ValueError("--vision adds a random tower to a preset; a checkpoint directory "
                         "brings its own vision_config")
    path = Path(resolve_model(cfg.model))
    if not path.is_dir():
        raise ValueError(f"--model {cfg.model!r} is neither {EMBEDDED!r}, a preset "
                         f"({', '.join(PRESETS)}) nor a directory")
    from openk2.model.dtypes import torch_dtype
    from openk2.model.weights import load_model
    from openk2.tokenizer import load_tokenizer
    from openk2.tokenizer.resolve import check_vocab_fits

    tokenizer = load_tokenizer(path, cfg.tokenizer)  # before the weights: fail fast
    if _has_vision(path):
        from openk2.model.vision.checkpoint import load_multimodal

        model = load_multimodal(path, dtype=torch_dtype(cfg.dtype), device=cfg.device)
        check_media_pad(model.media_pad_token_id, tokenizer)
    else:
        from openk2.model.quantize import int4_loading

        model = load_model(
            path, dtype=torch_dtype(cfg.dtype), device=cfg.device, int4=int4_loading(cfg.quant)
        ).eval()
    check_vocab_fits(tokenizer.vocab_size, model.config.vocab_size,
                     fix=f"pass the --tokenizer {path} was trained with")
    return model, tokenizer, path.resolve().name


def _has_vision(path: Path) -> bool:
    """Whether a checkpoint's config.json describes the K2.5 / K2.6 multimodal model."""
    from openk2.model.safetensors_io import read_config

    return isinstance(read_config(path).get("vision_config"), dict)


def check_media_pad(pad_id: int, tokenizer: Any) -> None:
    """The checkpoint's media placeholder id must be the tokenizer's `<|media_pad|>`."""
    from openk2.tokenizer.specials import MEDIA_PAD

    if tokenizer.token_id(MEDIA_PAD) != pad_id:
        raise ValueError(
            f"the checkpoint's media_placeholder_token_id is {pad_id} but the tokenizer's "
            f"{MEDIA_PAD} is {tokenizer.token_id(MEDIA_PAD)}; pass the matching --tokenizer"
        )


def _preset(cfg: ServeConfig) -> tuple[Any, Any, str]:
    from openk2.model import build_model, get_preset
    from openk2.model.dtypes import torch_dtype
    from openk2.model.params import total_and_active
    from openk2.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(None, cfg.tokenizer)
    config = get_preset(cfg.model)
    config = dataclasses.replace(
        config,
        vocab_size=tokenizer.vocab_size,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
    )
    if total_and_active(config)[0] > MAX_RANDOM_PARAMS:
        raise ValueError(
            f"preset {cfg.model!r} is too large to serve with random weights; "
            "pass a checkpoint directory instead"
        )
    dtype = torch_dtype(cfg.dtype)
    if cfg.vision is not None:
        return _random_multimodal(cfg, config, tokenizer), tokenizer, f"{cfg.model}-vl"
    model = build_model(config, device=cfg.device, dtype=dtype, seed=cfg.seed)
    return model.eval(), tokenizer, cfg.model


def _random_multimodal(cfg: ServeConfig, config: Any, tokenizer: Any) -> Any:
    """A preset text model behind a random vision tower, placeholders on the tokenizer's pad."""
    from openk2.model.dtypes import torch_dtype
    from openk2.model.vision import build_multimodal, get_vision_preset
    from openk2.tokenizer.specials import MEDIA_PAD

    try:
        vision = get_vision_preset(cfg.vision or "", text_hidden_size=config.hidden_size)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    model = build_multimodal(
        config, vision, device=cfg.device, dtype=torch_dtype(cfg.dtype), seed=cfg.seed
    )
    model.media_pad_token_id = tokenizer.token_id(MEDIA_PAD)
    return model.eval()


def build_state(cfg: ServeConfig) -> ServerState:
    from openk2.model.dtypes import canonical_dtype

    cfg.dtype = canonical_dtype(cfg.dtype, what="--dtype")  # bad input fails before any loading
    from openk2.model.quantize import QUANT_CHOICES, apply_quant

    if cfg.quant not in QUANT_CHOICES:
        raise ValueError(f"--quant must be one of {', '.join(QUANT_CHOICES)}, got {cfg.quant!r}")
    if cfg.lora and cfg.quant != "none":
        raise ValueError("--lora cannot be combined with --quant: adapters add to float "
                         "projections; fold the adapter in with `openk2 lora-merge` and serve "
                         "the merged model with --quant")  # fmt: skip
    model, tokenizer, name = load_model_and_tokenizer(cfg)
    if cfg.quant != "none":
        log.info("%s weights: %d linear layers quantized", cfg.quant, apply_quant(model, cfg.quant))
    if cfg.rope_factor is not None or cfg.max_position_embeddings is not None:
        from openk2.model.context_overrides import override_context

        override_context(
            model, rope_factor=cfg.rope_factor, max_position_embeddings=cfg.max_position_embeddings
        )
    _check_max_model_len(cfg.engine, model.config.max_position_embeddings)
    adapters = _load_adapters(model, cfg.lora, cfg.served_model_name or name, cfg.model)
    engine = LLMEngine(model, tokenizer, cfg.engine, adapters=adapters)
    log.info(
        "engine ready: %d cache pages x %d tokens, max_model_len %d",
        engine.cache.num_blocks, engine.config.block_size, engine.max_model_len,
    )  # fmt: skip
    return ServerState(
        engine=AsyncLLMEngine(engine),
        tokenizer=tokenizer,
        served_model_names=[cfg.served_model_name or name],
        adapter_names=adapters.names if adapters else [],
        api_keys=list(cfg.api_keys),
        limiter=ConcurrencyLimiter(cfg.max_concurrency),
        media=cfg.media,
        generation_defaults=generation_defaults(cfg.model),
    )


def generation_defaults(model: str) -> dict[str, float]:
    """`temperature` / `top_p` from the checkpoint's generation_config.json (none for a preset
    or a checkpoint without one); a malformed file stops the start with its path."""
    from openk2.embedded import resolve_model
    from openk2.model import PRESETS

    path = None if model in PRESETS else Path(resolve_model(model)) / "generation_config.json"
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        found = {k: float(data[k]) for k in ("temperature", "top_p") if data.get(k) is not None}
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a generation config ({exc})") from exc
    log.info("sampling defaults from %s: %s", path, found)
    return found


def _load_adapters(
    model: Any, lora: dict[str, str], base_name: str, model_arg: str
) -> AdapterSet | None:
    """Every `--lora NAME=PATH` read, checked against the model and attached, or a start-up
    error naming the adapter (before the engine or any socket exists); a warning when the
    adapter records another local base model than `--model`."""
    from openk2.embedded import resolve_model
    from openk2.model.peft_lora import recorded_base_differs

    if not lora:
        return None
    if base_name in lora:
        raise ValueError(f"--lora name {base_name!r} is the base model's served name")
    if hasattr(model, "vision_tower"):
        raise ValueError("--lora serves adapters over text models only; this model has a "
                         "vision tower")  # fmt: skip
    adapters = AdapterSet(model)
    for adapter_name, path in lora.items():
        adapters.add(adapter_name, Path(path))
        other = recorded_base_differs(Path(path), Path(resolve_model(model_arg)))
        if other is not None:
            log.warning("LoRA adapter %s was trained on %s, not on --model %s; its answers "
                        "will be wrong unless that is the same model", adapter_name, other,
                        model_arg)  # fmt: skip
        log.info("LoRA adapter %s ready from %s", adapter_name, path)
    return adapters


def parse_lora_options(values: list[str]) -> dict[str, str]:
    """`NAME=PATH` strings (vLLM's --lora-modules form) as {name: path}."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--lora {value!r}: expected NAME=PATH")
        if name in out:
            raise ValueError(f"--lora name {name!r} is given twice")
        out[name] = path
    return out


def _check_max_model_len(engine: EngineConfig, model_max: int) -> None:
    """--max-model-len beyond the model's position limit is a startup error, not a silent cap."""
    if engine.max_model_len is not None and engine.max_model_len > model_max:
        raise ValueError(
            f"--max-model-len {engine.max_model_len} exceeds the model's "
            f"max_position_embeddings {model_max}; raise that with --max-position-embeddings "
            "(research override) or lower --max-model-len"
        )


def build_app(cfg: ServeConfig) -> FastAPI:
    """The app for `cfg` (the engine thread starts with the app's lifespan)."""
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 2) - 1))
    return create_app(build_state(cfg))


def run(cfg: ServeConfig, extend: Callable[[FastAPI], object] | None = None) -> None:
    """Serve until interrupted; `extend` adds routes first (the CLI mounts the web app)."""
    import uvicorn

    app = build_app(cfg)
    if extend is not None:
        extend(app)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info", timeout_graceful_shutdown=5)
