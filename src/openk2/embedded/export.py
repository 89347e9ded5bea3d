"""Turn a finished training run into the shipped checkpoint: bf16 weights, config, tokenizer.

The package carries the model in bf16 (about 21 MB for `tiny`); the server upcasts to its
`--dtype` (float32 by default) when it loads. The directory is written next to the target and
swapped in at the end, so a failed export never leaves a half-written model in the package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from openk2.embedded import model_dir
from openk2.model.weights import load_model, save_model
from openk2.tokenizer.resolve import copy_tokenizer, resolve_tokenizer

MAX_SHIPPED_BYTES = 25 * 1024 * 1024
"""The package budget for the embedded model (weights + config + tokenizer)."""


def export_model(final: Path, out: Path | None = None) -> dict[str, int]:
    """Write `final` (a training run's `final/`) as the shipped checkpoint; returns file sizes."""
    out = out or model_dir()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = resolve_tokenizer(final)  # the one rule: a final/ carries its tokenizer
    model = load_model(final, dtype=torch.bfloat16)
    save_model(model, staging)
    copy_tokenizer(tokenizer, staging)
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
