"""`export_gguf`: a checkpoint directory (config, safetensors, tokenizer) -> one GGUF file.

The file is written to a temporary name beside `out` and renamed when complete, so a failed
export never leaves a truncated GGUF behind. `q4_k_m` first writes an f16 GGUF and then runs
llama.cpp's quantizer on it (`llama_quantize`; gguf-py has no Q4_K quantizer); without one the
export stops before reading any weights. Tensors are converted one at a time (a MoE layer's
routed experts one projection at a time) and spooled to a temporary file, so memory stays near
one such group in float32, while the disk briefly holds the output twice.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gguf

from openk2.export.gguf import metadata, quantize, vocab
from openk2.export.gguf.chat_template import k26_chat_template
from openk2.export.gguf.llama_quantize import HOW_TO_GET_IT, QuantizeError, find_quantizer
from openk2.export.gguf.tensors import gguf_tensors
from openk2.model.config import load_config
from openk2.model.weights import iter_state_dict


class GGUFExportError(RuntimeError):
    """The export cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What was written."""

    path: Path
    tensors: int
    size_bytes: int


def export_gguf(model_dir: Path, out: Path, quant: str = "f16") -> ExportResult:
    """Write the checkpoint in `model_dir` to `out` as a `quant` GGUF (see `quantize.QUANTS`)."""
    if quant not in quantize.QUANTS:
        raise GGUFExportError(f"unknown quant {quant!r}; use one of {', '.join(quantize.QUANTS)}")
    quantizer = find_quantizer() if quant == "q4_k_m" else None
    if quant == "q4_k_m" and quantizer is None:
        raise GGUFExportError(HOW_TO_GET_IT)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".gguf-") as tmp:
        staged = Path(tmp) / out.name
        count = _write(model_dir, staged, "f16" if quantizer else quant)
        if quantizer is not None:
            final = Path(tmp) / f"q4km-{out.name}"
            try:
                quantizer(staged, final)
            except QuantizeError as exc:
                raise GGUFExportError(str(exc)) from exc
            staged = final
        os.replace(staged, out)
    return ExportResult(path=out, tensors=count, size_bytes=out.stat().st_size)


def _write(model_dir: Path, path: Path, quant: str) -> int:
    config = load_config(model_dir)
    try:
        metadata.check_supported(config)
        words = vocab.build_vocab(model_dir, config.vocab_size)
    except ValueError as exc:
        raise GGUFExportError(str(exc)) from exc
    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.DEEPSEEK2]
    writer = gguf.GGUFWriter(path, arch, use_temp_file=True)
    metadata.write_hparams(writer, config, model_dir.name)
    writer.add_file_type(quantize.FILE_TYPES[quant])
    _write_tokenizer(writer, words, config.bos_token_id, _eos_id(config.eos_token_id))
    count = 0
    for name, array in gguf_tensors(config, iter_state_dict(model_dir)):
        qtype = quantize.tensor_type(name, array.shape, quant)
        try:
            writer.add_tensor(name, quantize.encode(array, qtype), raw_dtype=qtype)
        except ValueError as exc:
            raise GGUFExportError(f"{name}: {exc}") from exc
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return count


def _eos_id(eos: int | list[int] | None) -> int | None:
    """The first EOS id: GGUF has one `eos_token_id` key."""
    if isinstance(eos, list):
        return eos[0] if eos else None
    return eos


def _write_tokenizer(writer: gguf.GGUFWriter, words: vocab.GGUFVocab, bos: int | None,
                     eos: int | None) -> None:
    """`tokenizer.ggml.*`: byte-level BPE, the K2 split pattern, ids and the chat template.

    K2 prompts carry no BOS (the chat template starts with a role token), so add_bos is false;
    `<|im_end|>` ends a chat turn, so it is the end-of-turn id as well as a stop token.
    """
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.PRE_TOKENIZER)
    writer.add_token_list(words.tokens)
    writer.add_token_types(words.token_types)
    writer.add_token_merges(words.merges)
    if bos is not None:
        writer.add_bos_token_id(bos)
    if eos is not None:
        writer.add_eos_token_id(eos)
    ids = words.special_ids
    if "<|im_end|>" in ids:
        writer.add_eot_token_id(ids["<|im_end|>"])
    if "[PAD]" in ids:
        writer.add_pad_token_id(ids["[PAD]"])
    if "[UNK]" in ids:
        writer.add_unk_token_id(ids["[UNK]"])
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(k26_chat_template())
