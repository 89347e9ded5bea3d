"""Which GGML type each tensor gets, and the quantization itself (gguf-py's `quants`).

`f32` is lossless (the reference of speed comparisons); `bf16` is lossless for bf16
checkpoints; `f16` rounds bf16 values below f16's normal range
(~6e-5) to its subnormal steps and refuses values beyond its range (65504).
Rules follow llama.cpp's converter: 1-D tensors (norms, the router bias) and the router
(`ffn_gate_inp`) stay float32; the other weights take the file's type when their rows (GGUF
`ne[0]`) split into whole quantization blocks, else they fall back to float16. `q4_0` keeps
`output.weight` at Q8_0, since the logits are the most quantization-sensitive matmul
(llama-quantize keeps it above 4 bits too). `q4_k_m` is written as f16 and finished by
llama.cpp's `llama-quantize`: gguf-py implements Q4_K/Q6_K dequantization only.
"""

from __future__ import annotations

import gguf
import numpy as np

Q = gguf.GGMLQuantizationType

FILE_TYPES: dict[str, gguf.LlamaFileType] = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "bf16": gguf.LlamaFileType.MOSTLY_BF16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "q4_k_m": gguf.LlamaFileType.MOSTLY_Q4_K_M,
}
"""`--quant` choices -> `general.file_type`."""

QUANTS = tuple(FILE_TYPES)

NATIVE: dict[str, Q] = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}
"""The quants written directly; q4_k_m goes through `llama-quantize` from an f16 file."""

_KEEP_F32 = (".ffn_gate_inp.weight",)
_HIGH_PRECISION = {"output.weight": Q.Q8_0}


def tensor_type(name: str, shape: tuple[int, ...], quant: str) -> Q:
    """The GGML type `name` (torch `shape`) is stored as in a `quant` file."""
    if len(shape) == 1 or name.endswith(_KEEP_F32):
        return Q.F32
    wanted = _HIGH_PRECISION.get(name, NATIVE[quant]) if quant == "q4_0" else NATIVE[quant]
    block = gguf.GGML_QUANT_SIZES[wanted][0]
    return wanted if shape[-1] % block == 0 else Q.F16


def encode(array: np.ndarray, qtype: Q) -> np.ndarray:
    """`array` (float32) in `qtype`: a float array for F32/F16, the raw blocks otherwise."""
    if qtype == Q.F32:
        return array.astype(np.float32, copy=False)
    if qtype == Q.F16:
        return _to_f16(array)
    return gguf.quants.quantize(array, qtype)


def _to_f16(array: np.ndarray) -> np.ndarray:
    largest = float(np.abs(array).max(initial=0.0))
    if largest > np.finfo(np.float16).max:
        raise ValueError(f"a weight of magnitude {largest:.4g} overflows float16; "
                         "export with --quant bf16 instead")
    return array.astype(np.float16)
