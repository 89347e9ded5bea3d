"""The one dtype vocabulary of every `--dtype` option and run-file `precision`.

Canonical names are torch's and Hugging Face's (`config.json` `torch_dtype`/`dtype`):
`float32`, `bfloat16`, `float16`. The short spellings `fp32`, `bf16`, `fp16` that older run files
and `openk2 convert` used are still accepted, with a FutureWarning (shown to end users by
default) naming the canonical spelling.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

DTYPE_NAMES: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""Canonical dtype names, as torch and Hugging Face spell them."""

DEPRECATED_ALIASES: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""Old short spellings → canonical name (accepted with a deprecation warning)."""


def canonical_dtype(name: str, *, what: str = "dtype", allowed: Sequence[str] = DTYPE_NAMES) -> str:
    """`name` in canonical spelling; an old alias warns, anything else is a ValueError.

    `what` names the option in messages (`--dtype`, `precision`); `allowed` narrows the choice
    where a setting supports fewer dtypes (training precision has no float16).
    """
    if name in DEPRECATED_ALIASES:
        new = DEPRECATED_ALIASES[name]
        warnings.warn(
            f"{what} {name!r} is deprecated; write {new!r}", FutureWarning, stacklevel=2
        )
        name = new
    if name not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {name!r}")
    return name


def torch_dtype(name: str, *, what: str = "dtype") -> torch.dtype:
    """The torch dtype for a canonical name or an old alias."""
    return getattr(torch, canonical_dtype(name, what=what))
