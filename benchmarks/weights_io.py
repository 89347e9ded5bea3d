"""Checkpoint IO throughput: sharded write, lazy read, INT4 and FP8 decode, load_model.

Prints one line per stage with MB/s of decoded (model-dtype) bytes. Run:
    .venv/bin/python benchmarks/weights_io.py [--experts 16] [--preset small]
Figures on a shared 2-core machine are noisy; compare stages within one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from openk2.model.quant.fp8 import dequantize_fp8_block, quantize_fp8_block
from openk2.model.quant.int4 import dequantize_int4, quantize_int4
from openk2.model.safetensors_io import CheckpointReader
from openk2.model.safetensors_writer import ShardedWriter

# One K2.6 routed expert projection: gate/up [2048, 7168].
EXPERT_SHAPE = (2048, 7168)


def _timed(label: str, nbytes: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    mib = nbytes / 2**20
    print(f"{label:<34} {mib:9.1f} MiB  {seconds:7.3f} s  {mib / seconds:8.1f} MiB/s")
    return seconds


def bench_tensor_io(n_experts: int, out: Path) -> None:
    """Write and read back `n_experts` bf16 expert matrices through the sharded writer/reader."""
    torch.manual_seed(0)
    weights = [torch.randn(EXPERT_SHAPE, dtype=torch.bfloat16) * 0.02 for _ in range(n_experts)]
    nbytes = sum(w.nbytes for w in weights)

    def write() -> None:
        with ShardedWriter(out, max_shard_size="256MB") as writer:
            for i, w in enumerate(weights):
                writer.add(f"experts.{i}.weight", w)

    def read() -> None:
        with CheckpointReader(out) as reader:
            for name in reader.names:
                reader.get(name).clone()  # mmap reads are lazy: touch every byte

    _timed("safetensors write (bf16)", nbytes, write)
    _timed("safetensors read+copy (warm cache)", nbytes, read)
    _timed("int4 quantize (bf16 in)", nbytes, lambda: [quantize_int4(w) for w in weights])
    quantized = [quantize_int4(w) for w in weights]
    _timed(
        "int4 dequantize -> bf16",
        nbytes,
        lambda: [dequantize_int4(q.weight_packed, q.weight_scale, EXPERT_SHAPE) for q in quantized],
    )
    fp8 = [quantize_fp8_block(w) for w in weights]
    _timed(
        "fp8 block dequantize -> bf16",
        nbytes,
        lambda: [dequantize_fp8_block(w8, s) for w8, s in fp8],
    )


def bench_load_model(preset: str, out: Path) -> None:
    """save_model then load_model of a seeded preset, bf16 and INT4-expert checkpoints."""
    from openk2.model.config import get_preset
    from openk2.model.model import KimiK2ForCausalLM
    from openk2.model.weights import load_model, save_model

    torch.manual_seed(0)
    model = KimiK2ForCausalLM(get_preset(preset)).to(torch.bfloat16)
    model.init_weights()
    nbytes = sum(t.nbytes for t in model.state_dict().values())
    for int4 in (False, True):
        target = out / f"{preset}-{'int4' if int4 else 'bf16'}"
        _timed(
            f"save_model {preset} int4={int4}",
            nbytes,
            lambda t=target, q=int4: save_model(model, t, int4_experts=q),
        )
        _timed(f"load_model {preset} int4={int4}", nbytes, lambda t=target: load_model(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experts", type=int, default=16, help="expert matrices in the IO test")
    parser.add_argument("--preset", default="small", help="model preset for load_model ('' skips)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        bench_tensor_io(args.experts, Path(tmp) / "io")
        if args.preset:
            bench_load_model(args.preset, Path(tmp))


if __name__ == "__main__":
    main()
