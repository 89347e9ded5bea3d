"""Q4_K_M through llama.cpp itself, since gguf-py cannot quantize to K-quants.

Two ways to reach llama.cpp's quantizer, tried in order: the `llama-quantize` program
(`$OPENK2_LLAMA_QUANTIZE`, else on PATH), or `llama_model_quantize` from the
`llama-cpp-python` package (`pip install openk2[llamacpp]`), which compiles llama.cpp. Either
takes an f16 GGUF and writes the Q4_K_M file with llama.cpp's own per-tensor rules.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

LLAMA_QUANTIZE_ENV = "OPENK2_LLAMA_QUANTIZE"
"""Path of `llama-quantize`, when it is not on PATH."""

HOW_TO_GET_IT = (
    "q4_k_m needs llama.cpp's quantizer (gguf-py cannot quantize to Q4_K): put llama-quantize "
    f"on PATH or in ${LLAMA_QUANTIZE_ENV} (cmake -B build && cmake --build build --target "
    "llama-quantize), or `pip install llama-cpp-python`; or export --quant q4_0, or f16 and run "
    "`llama-quantize FILE.gguf OUT.gguf Q4_K_M` yourself")

Quantizer = Callable[[Path, Path], None]


class QuantizeError(RuntimeError):
    """llama.cpp's quantizer is missing or failed."""


def find_quantizer() -> Quantizer | None:
    """The program if configured or on PATH, else the Python binding, else None."""
    configured = os.environ.get(LLAMA_QUANTIZE_ENV)
    if configured:
        return _program(Path(configured)) if Path(configured).is_file() else None
    found = shutil.which("llama-quantize")
    if found:
        return _program(Path(found))
    if importlib.util.find_spec("llama_cpp") is not None:
        return _binding
    return None


def _program(tool: Path) -> Quantizer:
    def run(source: Path, target: Path) -> None:
        done = subprocess.run([str(tool), str(source), str(target), "Q4_K_M"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise QuantizeError(f"llama-quantize failed ({done.returncode}): " + " | ".join(tail))
    return run


def _binding(source: Path, target: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(),
                                            ctypes.byref(params))
    if status != 0:
        raise QuantizeError(f"llama_model_quantize failed with status {status}")
