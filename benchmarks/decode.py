"""Batch-1 greedy decode speed: openk2 vs transformers on the same weights, and vs the roofline.

    .venv/bin/python benchmarks/decode.py [--preset small] [--dtypes float32,bfloat16,int8]
        [--prompt-len 32] [--new-tokens 64] [--threads 1] [--repeats 3]

`int8` = fp32 model with openk2's opt-in int8 decode tables (`set_decode_format("int8")`),
against transformers in fp32 (it has no int8 CPU path) and against a 1-byte-per-weight roofline.

Both models get identical weights (openk2's seeded init, converted to transformers 5.23's fused
expert layout). Each run prefills the prompt, then times only the decode steps; the best of
`--repeats` runs is reported. The roofline is memory bandwidth / bytes of active weights per
token, with the bandwidth measured in this same run (so CPU contention from other jobs hits
both sides of the ratio alike) two ways: a 256 MB fp32 GEMV (what a BLAS matrix-vector kernel
streams) and a 256 MB fp32 `sum` (what one core reads at best; the stricter roofline).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "model"))

from hf_oracle import hf_config, openk2_to_hf_state_dict  # noqa: E402

from openk2.model import KimiK2ForCausalLM, build_model, get_preset  # noqa: E402
from openk2.model.layers.decode_tables import DecodeFormat, encode_rows, matvec  # noqa: E402
from openk2.model.layers.moe import MoE  # noqa: E402
from openk2.model.params import total_and_active  # noqa: E402

Step = Callable[[torch.Tensor], torch.Tensor]


def _bytes_per_second(tensor: torch.Tensor, probe: Callable[[], object], repeats: int) -> float:
    probe()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        probe()
        best = min(best, time.perf_counter() - start)
    return tensor.numel() * tensor.element_size() / best


def measure_bandwidth(dtype: torch.dtype, repeats: int = 5) -> float:
    """Bytes/s streamed by F.linear(x[1, 4096], W[16384, 4096]) in `dtype` (best of repeats)."""
    weight = torch.randn(16384, 4096, dtype=dtype)
    x = torch.randn(1, 4096, dtype=dtype)
    return _bytes_per_second(weight, lambda: F.linear(x, weight), repeats)


def measure_read_bandwidth(repeats: int = 5) -> float:
    """Bytes/s of one core summing a 256 MB fp32 tensor: the plain memory read rate."""
    data = torch.randn(16384, 4096)
    return _bytes_per_second(data, data.sum, repeats)


def measure_table_kernel(dtype: torch.dtype, fmt: DecodeFormat, repeats: int = 5) -> float:
    """Bytes/s of openk2's decode matrix-vector kernel (`matvec`) on a [16384, 4096] table
    (64M weights; fp32: `mm`, bf16 and int8: embedding bag): its cap on large matrices."""
    table = encode_rows(torch.randn(16384, 4096).to(dtype), fmt)
    x = torch.randn(1, 16384, dtype=dtype)
    return _bytes_per_second(table, lambda: matvec(x, table), repeats)


def weight_format(name: str) -> tuple[torch.dtype, DecodeFormat, float]:
    """(model dtype, decode format, bytes per weight read) of a `--dtypes` entry."""
    if name == "int8":
        return torch.float32, "int8", 1.0
    dtype = getattr(torch, name)
    return dtype, "native", dtype.itemsize


def active_weights(model: KimiK2ForCausalLM) -> list[torch.Tensor]:
    """Every weight matrix one decode token reads (the first top-k experts stand in for the
    routed ones: same shapes, same bytes)."""
    weights = [model.lm_head.weight]
    top_k = model.config.num_experts_per_tok
    for layer in model.model.layers:
        attn = layer.self_attn
        for name in ("q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"):
            if hasattr(attn, name):
                weights.append(getattr(attn, name).weight)
        mlp = layer.mlp
        if isinstance(mlp, MoE):
            ffns = [*list(mlp.experts)[:top_k], mlp.shared_experts]
            weights.append(mlp.gate.weight)
        else:
            ffns = [mlp]
        for ffn in ffns:
            if ffn is not None:
                weights += [ffn.gate_proj.weight, ffn.up_proj.weight, ffn.down_proj.weight]
    return weights


def gemv_floor(model: KimiK2ForCausalLM) -> tuple[float, float, list[int]]:
    """Tokens/s if a step were nothing but one F.linear per active weight matrix."""
    weights = active_weights(model)
    inputs = [torch.randn(1, w.shape[1], dtype=w.dtype) for w in weights]
    with torch.inference_mode():
        wall, cpu = time.perf_counter(), time.process_time()
        for weight, x in zip(weights, inputs, strict=True):
            F.linear(x, weight)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1 / wall, 1 / cpu, []


def openk2_decoder(model: KimiK2ForCausalLM, total: int) -> Callable[[torch.Tensor], Step]:
    """prefill(prompt) -> step(token) closures over a fresh latent cache.

    The first decode steps build openk2's decode tables (transposed, fused weight copies, see
    `openk2.model.layers.decode_tables`): a one-off cost per loaded model, paid in the untimed
    warm-up run (`runners`), as transformers' first run warms its own allocations.
    """

    def prefill(prompt: torch.Tensor) -> Step:
        cache = model.new_cache(1, total)
        model(prompt, cache=cache, logits_to_keep=1)

        def step(token: torch.Tensor) -> torch.Tensor:
            return model(token, cache=cache, logits_to_keep=1)[:, -1]

        return step

    return prefill


def hf_decoder(model: torch.nn.Module) -> Callable[[torch.Tensor], Step]:
    from transformers import DynamicCache

    def prefill(prompt: torch.Tensor) -> Step:
        cache = DynamicCache(config=model.config)
        model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)

        def step(token: torch.Tensor) -> torch.Tensor:
            out = model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
            return out.logits[:, -1]

        return step

    return prefill


def time_decode(
    prefill: Callable[[torch.Tensor], Step], prompt: torch.Tensor, new: int
) -> tuple[float, float, list[int]]:
    """(decode tokens/s by wall clock, by process CPU time, greedy tokens) of one run."""
    with torch.inference_mode():
        step = prefill(prompt)
        token = prompt[:, -1:]
        tokens = []
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(new):
            token = step(token).argmax(-1, keepdim=True)
            tokens.append(int(token))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return new / wall, new / cpu, tokens


def best_of(
    runners: dict[str, Callable[[], tuple[float, float, list[int]]]], repeats: int
) -> dict[str, tuple[float, float, list[int]]]:
    """Interleave the runners `repeats` times (contention hits all alike); keep each best."""
    best: dict[str, tuple[float, float, list[int]]] = {}
    for _ in range(repeats):
        for name, runner in runners.items():
            wall, cpu, tokens = runner()
            old = best.get(name, (0.0, 0.0, tokens))
            best[name] = (max(old[0], wall), max(old[1], cpu), tokens)
    return best


def hf_twin(model: KimiK2ForCausalLM, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import DeepseekV3ForCausalLM

    config = hf_config(model.config)
    config._attn_implementation = "sdpa"
    twin = DeepseekV3ForCausalLM(config).to(dtype).eval()
    twin.load_state_dict(openk2_to_hf_state_dict(model.state_dict()), strict=True)
    return twin


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    config = get_preset(args.preset)
    total, active = total_and_active(config)
    print(
        f"{args.preset}: {total / 1e6:.1f}M params, {active / 1e6:.1f}M active; "
        f"threads={args.threads}, prompt={args.prompt_len}, new={args.new_tokens}"
    )
    prompt = torch.randint(
        0, config.vocab_size, (1, args.prompt_len), generator=torch.Generator().manual_seed(0)
    )
    for name in args.dtypes.split(","):
        dtype, fmt, weight_bytes = weight_format(name)
        model = build_model(config, dtype=dtype, seed=0).eval()
        model.set_decode_format(fmt)
        twin = hf_twin(model, dtype)
        best = best_of(runners(model, twin, prompt, args.new_tokens), args.repeats)
        report(name, active * weight_bytes, best)
        del model, twin


def runners(
    model: KimiK2ForCausalLM, twin: torch.nn.Module, prompt: torch.Tensor, new: int
) -> dict[str, Callable[[], tuple[float, float, list[int]]]]:
    """What `best_of` interleaves: both decoders and the two bandwidth probes."""
    ours = openk2_decoder(model, prompt.shape[1] + new + 1)
    theirs = hf_decoder(twin)
    dtype, fmt = model.lm_head.weight.dtype, model.decode_format
    time_decode(ours, prompt, new)  # untimed warm-up of both
    time_decode(theirs, prompt, new)
    return {
        "openk2": lambda: time_decode(ours, prompt, new),
        "transformers": lambda: time_decode(theirs, prompt, new),
        "floor": lambda: gemv_floor(model),
        "bandwidth": lambda: (measure_bandwidth(torch.float32), 0.0, []),
        "read": lambda: (measure_read_bandwidth(), 0.0, []),
        "kernel": lambda: (measure_table_kernel(dtype, fmt), 0.0, []),
    }


def report(
    name: str, weight_bytes: float, best: dict[str, tuple[float, float, list[int]]]
) -> None:
    ours, ours_cpu, our_tokens = best["openk2"]
    theirs, theirs_cpu, hf_tokens = best["transformers"]
    bandwidth, read, kernel = best["bandwidth"][0], best["read"][0], best["kernel"][0]
    floor = best["floor"][0]
    roofline, read_roofline = bandwidth / weight_bytes, read / weight_bytes
    same = sum(a == b for a, b in zip(our_tokens, hf_tokens, strict=True))
    print(
        f"[{name}] openk2 {ours:.1f} tok/s (cpu-time {ours_cpu:.1f}) | transformers "
        f"{theirs:.1f} tok/s (cpu-time {theirs_cpu:.1f}) | ratio {ours / theirs:.2f}x "
        f"(cpu-time {ours_cpu / theirs_cpu:.2f}x)\n"
        f"  roofline {roofline:.1f} tok/s (fp32 GEMV {bandwidth / 1e9:.1f} GB/s) -> "
        f"{ours / roofline:.0%} | read roofline {read_roofline:.1f} tok/s (fp32 sum "
        f"{read / 1e9:.1f} GB/s) -> {ours / read_roofline:.0%}\n"
        f"  openk2 {name} matvec {kernel / 1e9:.1f} GB/s -> kernel cap "
        f"{kernel / weight_bytes:.1f} tok/s -> {ours * weight_bytes / kernel:.0%}"
        f" | GEMV-only floor (F.linear per matrix) {floor:.1f} tok/s -> {ours / floor:.0%}"
        f" | greedy tokens equal {same}/{len(our_tokens)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
