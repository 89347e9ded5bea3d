"""GGUF export for llama.cpp (arch `deepseek2`, tokenizer `gpt2` + pre-tokenizer `kimi-k2`).

`tensors` maps openk2's checkpoint tensors to llama.cpp's names and layouts, `quantize` picks
and applies each tensor's GGML type, `metadata` writes the `deepseek2.*` hyperparameters,
`vocab` the byte-level BPE vocabulary with merges recovered from the tiktoken ranks, and
`chat_template` the K2.6 Jinja template; `writer.export_gguf` puts them together.
"""

from openk2.export.gguf.quantize import QUANTS
from openk2.export.gguf.writer import GGUFExportError, export_gguf

__all__ = ["QUANTS", "GGUFExportError", "export_gguf"]
