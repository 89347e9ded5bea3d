"""The suites `openk2 eval --suite` knows, by name (imported lazily, one module each)."""

from __future__ import annotations

import importlib
from typing import Any

from openk2.evals.suites.base import Sample, Score, Suite

_REGISTRY = {
    "tool-calls": ("openk2.evals.suites.toolcalls", "ToolCallsSuite"),
    "preflight": ("openk2.evals.suites.preflight", "PreflightSuite"),
    "functions": ("openk2.evals.suites.functions", "FunctionsSuite"),
    "math": ("openk2.evals.suites.math", "MathSuite"),
    "code": ("openk2.evals.suites.code", "CodeSuite"),
    "niah": ("openk2.evals.suites.niah", "NiahSuite"),
    "horizon": ("openk2.evals.suites.horizon", "HorizonSuite"),
}

SUITE_NAMES = tuple(_REGISTRY)


def get_suite(name: str, **options: Any) -> Suite:
    """A fresh suite object by name, built with `options` (e.g. the horizon's `steps`);
    an unknown name or option is a ValueError that lists what is known."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITE_NAMES)}")
    module, cls = _REGISTRY[name]
    factory = getattr(importlib.import_module(module), cls)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ValueError(f"suite {name!r}: bad options {sorted(options)}: {exc}") from exc


__all__ = ["SUITE_NAMES", "Sample", "Score", "Suite", "get_suite"]
