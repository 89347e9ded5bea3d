"""Long prompts through the openk2 engine vs transformers' DeepseekV3 on the same weights.

Each (implementation, length) runs in a fresh subprocess, so its peak RSS (ru_maxrss) is its
own. Reported per point: prefill seconds and tokens/s, peak RSS and the growth over the process
after building the model (the memory the context itself costs). A least-squares line of RSS vs
length goes to stdout; figures to benchmarks/figures/long_context_{rss,speed}.png.

    PYTHONPATH=src .venv/bin/python benchmarks/long_context.py \
        --lengths 2048,4096,8192,16384,32768 --hf-lengths 2048,4096,8192
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "benchmarks" / "figures"


def _model(length: int):  # noqa: ANN202
    """The debug preset, position limit raised (a research override: numerics unchanged), with
    random weights built through transformers so both sides carry the same tensors."""
    from model.hf_oracle import openk2_from_hf, random_hf_model
    from openk2.model import get_preset

    config = get_preset("debug").replace(max_position_embeddings=length + 64)
    hf = random_hf_model(config, seed=0, std=0.05)
    return config, hf, openk2_from_hf(hf, config)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_openk2(length: int, chunk: int, progress: Path | None = None) -> dict[str, float]:
    """One prompt of `length` tokens through LLMEngine (chunked prefill, 1 output token);
    with `progress`, one JSON line per engine step (tokens done, seconds, RSS growth)."""
    from engine.fakes import ByteTokenizer
    from openk2.engine.config import EngineConfig
    from openk2.engine.llm_engine import LLMEngine
    from openk2.engine.sampling_params import SamplingParams

    config, hf, model = _model(length)
    del hf
    engine_cfg = EngineConfig(max_model_len=length + 8, max_num_batched_tokens=chunk)
    engine = LLMEngine(model, ByteTokenizer(vocab_size=config.vocab_size), engine_cfg)
    base = _rss_mib()
    prompt = [(7 * i) % 500 + 1 for i in range(length)]
    engine.add_request(prompt, SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True))
    start = time.perf_counter()
    done = 0
    while engine.has_unfinished_requests():
        engine.step()
        done = min(length, done + chunk)
        if progress is not None:  # a long point's memory is readable before it ends
            with progress.open("a") as out:
                row = {"tokens": done, "seconds": time.perf_counter() - start,
                       "growth_mib": _rss_mib() - base}  # fmt: skip
                out.write(json.dumps(row) + "\n")
    return {"seconds": time.perf_counter() - start, "base_mib": base, "peak_mib": _rss_mib()}


def run_hf(length: int) -> dict[str, float]:
    """One forward of transformers' DeepseekV3 (sdpa attention) over the whole prompt."""
    import torch

    _, hf, model = _model(length)
    del model
    hf.config._attn_implementation = "sdpa"
    base = _rss_mib()
    ids = torch.tensor([[(7 * i) % 500 + 1 for i in range(length)]])
    start = time.perf_counter()
    with torch.inference_mode():
        hf(input_ids=ids, logits_to_keep=1, use_cache=True)
    return {"seconds": time.perf_counter() - start, "base_mib": base, "peak_mib": _rss_mib()}


def _child(impl: str, length: int, chunk: int, progress: Path | None) -> None:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))  # hf_oracle (weights both ways), ByteTokenizer
    torch.set_num_threads(1)
    result = run_openk2(length, chunk, progress) if impl == "openk2" else run_hf(length)
    print(json.dumps({"impl": impl, "length": length, **result}))


def _measure(
    impl: str, length: int, chunk: int, timeout: float, progress: Path | None
) -> dict | None:
    cmd = [sys.executable, __file__, "--child", impl, "--lengths", str(length),
           "--chunk", str(chunk)]  # fmt: skip
    if progress is not None:
        cmd += ["--progress", str(progress.with_suffix(f".{impl}-{length}.jsonl"))]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"{impl} {length}: failed ({type(exc).__name__})", file=sys.stderr)
        return None
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["tok_s"] = length / row["seconds"]
    row["growth_mib"] = row["peak_mib"] - row["base_mib"]
    return row


def _save(rows: list[dict], merge: bool) -> list[dict]:
    """Write the points to figures/long_context.json (merged with earlier ones if asked)."""
    path = FIGURES / "long_context.json"
    done = {(r["impl"], r["length"]) for r in rows}
    if merge and path.exists():
        rows += [r for r in json.loads(path.read_text()) if (r["impl"], r["length"]) not in done]
    rows.sort(key=lambda r: (r["impl"] != "openk2", r["length"]))
    FIGURES.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def _fit(rows: list[dict]) -> tuple[float, float]:
    """Least-squares RSS growth (MiB) = a + b * length; returns (a, b in bytes/token)."""
    xs = [r["length"] for r in rows]
    ys = [r["growth_mib"] for r in rows]
    n, mx, my = len(xs), sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
        1e-9, sum((x - mx) ** 2 for x in xs)
    )
    return my - slope * mx, slope * 2**20 if n > 1 else 0.0


def _plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    for key, label, name in (("growth_mib", "RSS growth during prefill (MiB)", "rss"),
                             ("tok_s", "prefill tokens/s", "speed")):  # fmt: skip
        fig, ax = plt.subplots(figsize=(6, 4))
        for impl in ("openk2", "hf"):
            pts = [r for r in rows if r["impl"] == impl]
            if pts:
                ax.plot([r["length"] for r in pts], [r[key] for r in pts], "o-", label=impl)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("prompt tokens (debug preset, 1 thread)")
        ax.set_ylabel(label)
        ax.legend()
        fig.tight_layout()
        fig.savefig(FIGURES / f"long_context_{name}.png", dpi=120)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="2048,4096,8192,16384,32768")
    parser.add_argument("--hf-lengths", default="2048,4096,8192")
    parser.add_argument("--chunk", type=int, default=2048, help="engine prefill chunk")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--merge", action="store_true",
                        help="keep earlier points of long_context.json not re-measured")
    parser.add_argument("--progress", type=Path,
                        help="per-step JSON lines of each openk2 point (PATH.openk2-N.jsonl)")
    parser.add_argument("--child", choices=("openk2", "hf"))
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.child:
        _child(args.child, lengths[0], args.chunk, args.progress)
        return
    plan = [("openk2", n) for n in lengths]
    plan += [("hf", int(x)) for x in args.hf_lengths.split(",") if x]
    rows = [r for impl, n in plan
            if (r := _measure(impl, n, args.chunk, args.timeout, args.progress))]  # fmt: skip
    rows = _save(rows, args.merge)
    print("| impl | tokens | prefill s | tok/s | peak RSS MiB | RSS growth MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['length']:,} | {r['seconds']:.1f} | {r['tok_s']:.0f} | "
              f"{r['peak_mib']:.0f} | {r['growth_mib']:.0f} |")  # fmt: skip
    for impl in ("openk2", "hf"):
        pts = [r for r in rows if r["impl"] == impl]
        if len(pts) > 1:
            a, b = _fit(pts)
            print(f"{impl}: RSS growth ~ {a:.0f} MiB + {b:,.0f} B/token x length")
    _plot(rows)


if __name__ == "__main__":
    main()
