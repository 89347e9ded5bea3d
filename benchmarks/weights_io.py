"""Checkpoint IO throughput: sharded write, lazy read, INT4 and FP8 decode, load_model.

Prints one line per stage with MB/s of decoded (model-dtype) bytes. Run:
    .venv/bin/python benchmarks/weights_io.py [--experts 16] [--preset small] [--threads 1]
Figures on a shared 2-core machine are noisy; compare stages within one run. When the cores are
oversubscribed, torch's 2-thread pool makes many small ops up to ~10x slower than 1 thread.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from openk2.model.quant.fp8 import dequantize_fp8_block, quantize_fp8_block
from openk2.model.quant.int4 import dequantize_int4, quantize_int4
from openk2.model.safetensors_io import CheckpointReader
from openk2.model.safetensors_writer import ShardedWriter

T = TypeVar("T")

# One K2.6 routed expert projection: gate/up [2048, 7168].
EXPERT_SHAPE = (2048, 7168)


def _timed(label: str, nbytes: int, fn: Callable[[], T]) -> T:
    """Run `fn` once, print its throughput over `nbytes`, return its result."""
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    mib = nbytes / 2**20
    print(f"{label:<34} {mib:9.1f} MiB  {seconds:7.3f} s  {mib / seconds:8.1f} MiB/s")
    return result


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


def _rss_anon_mib() -> float:
    """Anonymous (non file-backed) resident memory: what a load copies, unlike mmap'd pages."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_load_model(preset: str, out: Path) -> None:
    """save_model then load_model of a seeded preset: bf16 and INT4-expert checkpoints."""
    from openk2.model import build_model, get_preset
    from openk2.model.weights import load_model, save_model

    model = build_model(get_preset(preset), dtype=torch.bfloat16, seed=0)
    nbytes = sum(t.nbytes for t in model.state_dict().values())
    for int4 in (False, True):
        target = out / f"{preset}-{'int4' if int4 else 'bf16'}"
        _timed(
            f"save_model {preset} int4={int4}",
            nbytes,
            lambda t=target, q=int4: save_model(model, t, int4_experts=q),
        )
        for dtype in (None, torch.float32):
            before = _rss_anon_mib()
            label = f"load_model {preset} int4={int4} dtype={dtype}"
            loaded = _timed(label, nbytes, lambda t=target, d=dtype: load_model(t, dtype=d))
            print(f"{'':<34} anonymous memory +{_rss_anon_mib() - before:.0f} MiB")
            del loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experts", type=int, default=16, help="expert matrices in the IO test")
    parser.add_argument("--preset", default="small", help="model preset for load_model ('' skips)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_tensor_io(args.experts, Path(tmp) / "io")
        if args.preset:
            bench_load_model(args.preset, Path(tmp))


if __name__ == "__main__":
    main()
