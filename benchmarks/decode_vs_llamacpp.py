"""Batch-1 greedy decode, openk2 vs llama.cpp on the same weights, per weight format.

    .venv/bin/python benchmarks/decode_vs_llamacpp.py [--preset small] [--seed 0] [--rounds 3]
        [--formats fp32,bf16,8-bit,4-bit] [--llama-dir /work/opt/llama.cpp] [--quality]

One seeded preset model is saved as a checkpoint and exported with openk2's own GGUF exporter
(`openk2 convert --to gguf`) at each format; openk2 runs the same checkpoint:

| format | openk2 | llama.cpp GGUF |
|---|---|---|
| fp32 | float32 model | f32 |
| bf16 | bfloat16 model | bf16 |
| 8-bit | bf16 model, `--quant int8` (per-row int8, `_weight_int8pack_mm`) | q8_0 |
| 4-bit | bf16 model, `--quant int4` (group-32 int4, `_weight_int4pack_mm_for_cpu`) | q4_k_m |

llama.cpp is found (never vendored) as `build/bin/llama-bench` under `--llama-dir`
(default `$LLAMA_CPP_DIR`, else /work/opt/llama.cpp), an optimised build of a llama.cpp tree:
    cmake -B build -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j2 --target llama-bench --target llama-quantize
(`--build` runs those two commands). `llama-bench -t 1 -p 0 -n NEW -d PROMPT` times NEW tokens
generated after PROMPT tokens of context; openk2 prefills a PROMPT-token prompt and times NEW
greedy steps. Both run one thread, interleaved round by round, so contention from other jobs on
a shared machine hits both sides alike; the table gives each side's median over rounds and the
ratio of medians. The roofline beside each format is the read bandwidth measured in this run
(one core summing 256 MB) over the bytes of weights one token reads (every matrix but the
embedding; routed experts times top-k / experts), counted from each side's own tensors.

`--quality` adds each openk2 format's agreement with the fp32 model on this model and on the
embedded (trained) model: greedy tokens matching fp32 (free-running) and, teacher-forced along
the fp32 continuation, the relative logit error and top-1 agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from openk2.embedded import model_dir as embedded_dir
from openk2.export.gguf import export_gguf
from openk2.model import KimiK2ForCausalLM, ModelConfig, build_model, get_preset
from openk2.model.layers.moe import MoE
from openk2.model.params import total_and_active
from openk2.model.quantize import apply_quant, weight_bytes
from openk2.model.weights import load_model, save_model
from openk2.tokenizer import default_tokenizer_path

LLAMA_BINARIES = ("llama-bench", "llama-quantize")
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
             "avx_vnni", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Rate:
    """Tokens per second by wall clock and by the CPU time the decoder itself used (the second
    is what a process gets from a shared, oversubscribed machine's core when it runs)."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Format:
    name: str
    dtype: torch.dtype
    quant: str  # openk2 --quant
    gguf: str  # openk2 convert --quant


FORMATS = {
    f.name: f
    for f in (
        Format("fp32", torch.float32, "none", "f32"),
        Format("bf16", torch.bfloat16, "none", "bf16"),
        Format("8-bit", torch.bfloat16, "int8", "q8_0"),
        Format("4-bit", torch.bfloat16, "int4", "q4_k_m"),
    )
}


def llama_tools(root: Path, build: bool) -> Path:
    """The bin/ folder of an optimised llama.cpp build under `root` (built when asked)."""
    bin_dir = root / "build" / "bin"
    if not (bin_dir / "llama-bench").is_file() and build:
        flags = ["-DGGML_NATIVE=ON", "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF"]
        subprocess.run(["cmake", "-B", "build", *flags], cwd=root, check=True)
        targets = [arg for b in LLAMA_BINARIES for arg in ("--target", b)]
        subprocess.run(["nice", "cmake", "--build", "build", "-j2", *targets], cwd=root,
                       check=True)
    missing = [b for b in LLAMA_BINARIES if not (bin_dir / b).is_file()]
    if missing:
        sys.exit(f"no {', '.join(missing)} in {bin_dir}: build llama.cpp there (--build, or see "
                 "this script's docstring) or pass --llama-dir")
    return bin_dir


def cpu_flags() -> str:
    """The SIMD flags of this CPU that matter for these kernels (from /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    first = next((line for line in text.splitlines() if line.startswith("flags")), "")
    present = set(first.split())
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "?")
    return f"{model}: " + " ".join(f for f in CPU_FLAGS if f in present)


def read_bandwidth(repeats: int = 5) -> float:
    """Bytes/s of one core summing a 256 MB fp32 tensor (best of `repeats`)."""
    data = torch.randn(16384, 4096)
    data.sum()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - start)
    return data.numel() * 4 / best


def save_checkpoint(preset: str, seed: int, folder: Path) -> KimiK2ForCausalLM:
    """The seeded fp32 preset model, saved with the bundled tokenizer beside it."""
    model = build_model(get_preset(preset), dtype=torch.float32, seed=seed).eval()
    save_model(model, folder)
    for file in default_tokenizer_path().iterdir():
        shutil.copy(file, folder / file.name)
    return model


def openk2_model(checkpoint: Path, fmt: Format) -> KimiK2ForCausalLM:
    model = load_model(checkpoint, dtype=fmt.dtype).eval()
    apply_quant(model, fmt.quant)
    return model


def openk2_bytes_per_token(model: KimiK2ForCausalLM) -> float:
    """Weight bytes one decode token reads: every linear, routed experts times top-k / E."""
    total, _ = weight_bytes(model)
    for layer in model.model.layers:
        if isinstance(layer.mlp, MoE):
            experts = len(layer.mlp.experts)
            routed, _ = weight_bytes(layer.mlp.experts)
            total -= routed * (1 - model.config.num_experts_per_tok / experts)
    return float(total)


def gguf_bytes_per_token(path: Path, top_k: int, experts: int) -> float:
    """The same count from a GGUF's tensors (token_embd is a lookup, stacked experts x k/E)."""
    import gguf

    total = 0.0
    for tensor in gguf.GGUFReader(path).tensors:
        if tensor.name == "token_embd.weight" or len(tensor.shape) == 1:
            continue
        share = top_k / experts if "_exps." in tensor.name else 1.0
        total += int(tensor.n_bytes) * share
    return total


def openk2_tps(
    model: KimiK2ForCausalLM, prompt: torch.Tensor, new: int
) -> tuple[Rate, list[int]]:
    """(decode tokens/s by wall clock and by CPU time, greedy tokens) after prefilling."""
    with torch.inference_mode():
        cache = model.new_cache(1, prompt.shape[1] + new + 1)
        token = model(prompt, cache=cache, logits_to_keep=1)[:, -1].argmax(-1, keepdim=True)
        tokens = []
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(new):
            token = model(token, cache=cache, logits_to_keep=1)[:, -1].argmax(-1, keepdim=True)
            tokens.append(int(token))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return Rate(new / wall, new / cpu), tokens


def llama_tps(bin_dir: Path, gguf_path: Path, prompt: int, new: int) -> Rate:
    """llama-bench generating `new` tokens after `prompt` of context, 1 thread, no warm-up.

    Wall: llama-bench's own tokens/s. CPU: the children's CPU seconds of that run minus those
    of a 1-token run (same load, same prefill), over the `new - 1` tokens in between.
    """
    wall, cpu_full = _llama_bench(bin_dir, gguf_path, prompt, new)
    _, cpu_one = _llama_bench(bin_dir, gguf_path, prompt, 1)
    return Rate(wall, (new - 1) / max(cpu_full - cpu_one, 1e-9))


def _llama_bench(bin_dir: Path, gguf_path: Path, prompt: int, new: int) -> tuple[float, float]:
    cmd = [str(bin_dir / "llama-bench"), "-m", str(gguf_path), "-t", "1", "-p", "0",
           "-n", str(new), "-d", str(prompt), "-r", "1", "--no-warmup", "-o", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return float(json.loads(out)[0]["avg_ts"]), cpu


def export_all(checkpoint: Path, out_dir: Path, formats: list[Format], bin_dir: Path) -> dict:
    os.environ.setdefault("OPENK2_LLAMA_QUANTIZE", str(bin_dir / "llama-quantize"))
    return {f.name: export_gguf(checkpoint, out_dir / f"{f.gguf}.gguf", f.gguf).path
            for f in formats}


def measure(args: argparse.Namespace, work: Path) -> None:
    formats = [FORMATS[name] for name in args.formats.split(",")]
    bin_dir = llama_tools(Path(args.llama_dir), args.build)
    config = get_preset(args.preset)
    total, active = total_and_active(config)
    checkpoint = work / "ckpt"
    save_checkpoint(args.preset, args.seed, checkpoint)
    ggufs = export_all(checkpoint, work, formats, bin_dir)
    models = {f.name: openk2_model(checkpoint, f) for f in formats}
    prompt = torch.randint(0, config.vocab_size, (1, args.prompt_len),
                           generator=torch.Generator().manual_seed(args.seed))
    print(f"{args.preset} (seed {args.seed}): {total / 1e6:.1f}M params, {active / 1e6:.1f}M "
          f"active; 1 thread, batch 1, {args.new_tokens} greedy tokens after {args.prompt_len}")
    print(f"CPU {cpu_flags()}; torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()}); llama.cpp {bin_dir.parent.parent}")
    load_before = os.getloadavg()
    bandwidth = read_bandwidth()
    for model in models.values():  # warm-up (decode tables, allocator), untimed
        openk2_tps(model, prompt, 4)
    ours: dict[str, list[Rate]] = {n: [] for n in models}
    theirs: dict[str, list[Rate]] = {n: [] for n in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            ours[name].append(openk2_tps(model, prompt, args.new_tokens)[0])
            theirs[name].append(llama_tps(bin_dir, ggufs[name], args.prompt_len,
                                          args.new_tokens))
    load_after = os.getloadavg()
    print(f"read bandwidth {bandwidth / 1e9:.1f} GB/s; load average {load_before[0]:.1f} before,"
          f" {load_after[0]:.1f} after ({os.cpu_count()} CPUs); {args.rounds} interleaved rounds;"
          " medians; tok/s by wall clock [by CPU time]")
    print("| format | openk2 tok/s | llama.cpp tok/s | openk2 / llama.cpp | openk2 MB/token "
          "(roofline tok/s) | llama.cpp MB/token (roofline tok/s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for fmt in formats:
        print_row(fmt, models[fmt.name], ggufs[fmt.name], ours[fmt.name], theirs[fmt.name],
                  bandwidth, config)
    print("rounds, wall (openk2 / llama.cpp): " + "; ".join(
        f"{n}: " + ", ".join(f"{a.wall:.0f}/{b.wall:.0f}" for a, b in zip(ours[n], theirs[n],
                                                                         strict=True))
        for n in ours))
    if args.quality:
        print_quality(models, prompt, args.new_tokens, f"seeded {args.preset}")
        embedded = {f.name: openk2_model(embedded_dir(), f) for f in formats}
        print_quality(embedded, prompt % embedded["fp32"].config.vocab_size, args.new_tokens,
                      "embedded (trained) model")


def print_row(fmt: Format, model: KimiK2ForCausalLM, gguf_path: Path, ours: list[Rate],
              theirs: list[Rate], bandwidth: float, config: ModelConfig) -> None:
    mine = openk2_bytes_per_token(model)
    other = gguf_bytes_per_token(gguf_path, config.num_experts_per_tok, config.n_routed_experts)
    a_wall, b_wall = (statistics.median(r.wall for r in rates) for rates in (ours, theirs))
    a_cpu, b_cpu = (statistics.median(r.cpu for r in rates) for rates in (ours, theirs))
    print(f"| {fmt.name} ({fmt.quant} / {fmt.gguf}) | {a_wall:.1f} [{a_cpu:.1f}] | {b_wall:.1f} "
          f"[{b_cpu:.1f}] | {a_wall / b_wall:.2f} [{a_cpu / b_cpu:.2f}] | {mine / 1e6:.1f} "
          f"({bandwidth / mine:.0f}) | {other / 1e6:.1f} ({bandwidth / other:.0f}) |")


def print_quality(models: dict[str, KimiK2ForCausalLM], prompt: torch.Tensor, new: int,
                  label: str) -> None:
    """Greedy agreement with fp32 and teacher-forced logit error along fp32's tokens."""
    reference = models["fp32"]
    _, ref_tokens = openk2_tps(reference, prompt, new)
    sequence = torch.cat([prompt, torch.tensor([ref_tokens])], dim=1)
    with torch.inference_mode():
        ref_logits = reference(sequence)[0, prompt.shape[1] - 1 :].float()
    print(f"quality vs fp32, {label} ({new} tokens):")
    for name, model in models.items():
        _, tokens = openk2_tps(model, prompt, new)
        with torch.inference_mode():
            logits = model(sequence)[0, prompt.shape[1] - 1 :].float()
        same = sum(a == b for a, b in zip(tokens, ref_tokens, strict=True))
        error = ((logits - ref_logits).norm() / ref_logits.norm()).item()
        top1 = (logits.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
        print(f"  {name}: greedy {same}/{new} equal to fp32; logit rel. error {error:.4f}; "
              f"teacher-forced top-1 agreement {top1:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--llama-dir",
                        default=os.environ.get("LLAMA_CPP_DIR", "/work/opt/llama.cpp"))
    parser.add_argument("--build", action="store_true", help="build llama.cpp if missing")
    parser.add_argument("--quality", action="store_true")
    args = parser.parse_args()
    if "fp32" not in args.formats.split(",") and args.quality:
        parser.error("--quality compares against fp32: keep fp32 in --formats")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="decode-vs-llamacpp-") as tmp:
        measure(args, Path(tmp))


if __name__ == "__main__":
    main()
