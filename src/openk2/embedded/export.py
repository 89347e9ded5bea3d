"""Turn a finished training run into the shipped checkpoint: bf16 weights, config, tokenizer.

The package carries the model in bf16 (about 21 MB for `tiny`); the server upcasts to its
`--dtype` (float32 by default) when it loads. A run whose config has a `vision_config` (the
vision stage, `embedded.vision.train`) goes to `assets/openk2-embedded-vl` in the K2.5 layout
(`save_multimodal`): `load_multimodal` reads it whole, `load_model` its text model alone. The
directory is written next to the target and swapped in at the end, so a failed export never
leaves a half-written model in the package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from openk2.embedded import model_dir, vision_model_dir
from openk2.model.safetensors_io import read_config
from openk2.model.weights import load_model, save_model
from openk2.tokenizer.resolve import copy_tokenizer, resolve_tokenizer

GENERATION_CONFIG = {"temperature": 0.0}
"""Greedy by default: the demo model was trained and is evaluated on its argmax answers; at
K2.6's temperature 1.0 its small talk comes out garbled (a request may still ask for more)."""
MAX_SHIPPED_BYTES = 25 * 1024 * 1024
"""The package budget for the embedded model (weights + config + tokenizer)."""


def export_model(final: Path, out: Path | None = None) -> dict[str, int]:
    """Write `final` (a training run's `final/`) as the shipped checkpoint (the text default,
    or `embedded-vl` for a multimodal run, unless `out` says otherwise); returns file sizes."""
    out = out or (vision_model_dir() if _is_multimodal(final) else model_dir())
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = resolve_tokenizer(final)  # the one rule: a final/ carries its tokenizer
    _write_weights(final, staging)
    copy_tokenizer(tokenizer, staging)
    (staging / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG) + "\n")
    for file in staging.iterdir():
        file.chmod(0o644)  # package data: world-readable, whatever the writer's umask
    sizes = {p.name: p.stat().st_size for p in sorted(staging.iterdir())}
    if sum(sizes.values()) > MAX_SHIPPED_BYTES:
        shutil.rmtree(staging)
        raise ValueError(f"the export is {sum(sizes.values()) / 2**20:.1f} MiB, over the "
                         f"{MAX_SHIPPED_BYTES / 2**20:.0f} MiB package budget")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return sizes


def _is_multimodal(final: Path) -> bool:
    return "vision_config" in read_config(final)


def _write_weights(final: Path, staging: Path) -> None:
    """bf16 weights and config: multimodal when the run has a vision tower, text otherwise."""
    if _is_multimodal(final):
        from openk2.model.vision.checkpoint import load_multimodal, save_multimodal

        save_multimodal(load_multimodal(final, dtype=torch.bfloat16), staging)
    else:
        save_model(load_model(final, dtype=torch.bfloat16), staging)
