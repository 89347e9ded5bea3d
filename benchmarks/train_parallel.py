"""Distributed training on this machine, 1 vs 2 ranks, plus a paper estimate for full K2.6.

Measured part: `openk2 train --nproc 1` and `--nproc 2` (FSDP2 + expert parallelism, gloo,
OMP_NUM_THREADS=1 per rank, so 1 rank uses one core and 2 ranks two) on the same preset, data
and global batch, in interleaved rounds (`--repeats`) so other jobs on a shared machine slow
both alike; the best round of each is kept. Reported: median step time after the first step,
each rank's state bytes (parameters, gradients at peak, optimizer) and peak RSS, and the loss
gap between the runs.

Paper part (`estimate`): memory per GPU and step time for the real K2.6 shapes on N x H200 with
EP = N for routed experts and FSDP over N for everything else, from the formulas below:

  state/GPU   = (P_dense + P_experts) / N x (2 bf16 weight + 4 fp32 master + 4 fp32 grad
                + 4 Muon momentum) + P_adamw / N x 4 (AdamW's second moment)
  transient   = 2 x one gathered dense layer in bf16 (FSDP prefetch)
                + activations: T_gpu x D x 2 B x L (layer inputs kept under activation
                checkpointing) + T_gpu x D x 2 B x 40 (one layer recomputed, rough)
  compute     = 6 x P_active x T_step / (N x 989e12 x MFU)
  all-to-all  = T_gpu x K x D x 2 B x 4 (dispatch + combine, forward and backward) x L_moe
                x (N-1)/N, over B_net per GPU
  FSDP        = P_dense x (2 B x 2 all-gathers + 4 B reduce-scatter) x (N-1)/N / B_net
  Muon gather = P_dense_matrices x 2 B x (N-1)/N / B_net (experts are whole on their owner:
                Newton-Schulz on them needs no communication)

    PYTHONPATH=src .venv/bin/python benchmarks/train_parallel.py --preset tiny --steps 6
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

H200_BF16_FLOPS = 989e12
"""H200 dense bf16 peak (same SXM compute as H100)."""
H200_MEMORY = 141e9
_MEM = re.compile(r"rank (\d+)/(\d+) memory: params ([\d.]+) MiB, grads ([\d.]+) MiB, "
                  r"optimizer ([\d.]+) MiB, peak RSS ([\d.]+) MiB")  # fmt: skip


def corpus(path: Path, chars: int) -> Path:
    """Python stdlib sources: present wherever this Python is."""
    text, root = [], Path(sysconfig.get_paths()["stdlib"])
    for file in sorted(root.glob("*.py")):
        text.append(file.read_text(errors="ignore"))
        if sum(map(len, text)) > chars:
            break
    path.write_text("".join(text)[:chars])
    return path


def run_config(root: Path, args: argparse.Namespace, data: Path, nproc: int) -> Path:
    out = root / f"run{nproc}"
    cfg = {
        "model": {"preset": args.preset, "overrides": {"vocab_size": 8192}},
        "data": {"kind": "pretrain", "train_files": [str(data)], "seq_len": args.seq_len},
        "optim": {"lr": 0.01}, "schedule": {"kind": "constant", "warmup_steps": 1},
        "steps": args.steps, "batch_size": args.batch_size, "out_dir": str(out),
        "resume": False,
    }  # fmt: skip
    path = root / f"run{nproc}.json"
    path.write_text(json.dumps(cfg))
    return path


def measure(root: Path, args: argparse.Namespace, data: Path, nproc: int) -> dict[str, Any]:
    """One launch: per-step seconds and losses (metrics.jsonl), per-rank memory (stdout)."""
    config = run_config(root, args, data, nproc)
    yaml_path = config.with_suffix(".yaml")
    yaml_path.write_text(config.read_text())  # JSON is YAML
    cmd = [sys.executable, "-m", "openk2", "train", "--config", str(yaml_path),
           "--nproc", str(nproc), "--no-resume"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun sets it only for nproc > 1
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    rows = [
        json.loads(x) for x in (root / f"run{nproc}" / "metrics.jsonl").read_text().splitlines()
    ]
    ranks = [m.groups() for m in _MEM.finditer(done.stdout)]
    return {
        "nproc": nproc,
        "step_s_median": statistics.median(r["seconds"] for r in rows[1:]),
        "losses": [r["loss"] for r in rows],
        "ranks": [
            {
                "rank": int(r),
                "params_mib": float(p),
                "grads_mib": float(g),
                "optimizer_mib": float(o),
                "peak_rss_mib": float(rss),
            }
            for r, _, p, g, o, rss in ranks
        ],  # fmt: skip
    }


def estimate(gpus: int, tokens_per_step: int, mfu: float, net_gbs: float) -> dict[str, Any]:
    """The module docstring's formulas on the kimi-k2.6 preset's shapes."""
    from openk2.model import get_preset
    from openk2.model.params import count_parameters, total_and_active

    cfg = get_preset("kimi-k2.6")
    counts = {c.name: c.total for c in count_parameters(cfg)}
    total, active = total_and_active(cfg)
    experts = counts["routed experts"]
    dense = total - experts
    adamw = counts["embedding"] + counts["lm_head"]
    d, layers, moe_layers = cfg.hidden_size, cfg.num_hidden_layers, cfg.num_moe_layers
    state = (dense + experts) / gpus * 14 + adamw / gpus * 4
    layer_dense = (dense - adamw) / layers
    t_gpu = tokens_per_step / gpus
    transient = 2 * layer_dense * 2 + t_gpu * d * 2 * (layers + 40)
    share, net = (gpus - 1) / gpus, net_gbs * 1e9
    times = {
        "compute_s": 6 * active * tokens_per_step / (gpus * H200_BF16_FLOPS * mfu),
        "all_to_all_s": t_gpu * cfg.num_experts_per_tok * d * 2 * 4 * moe_layers * share / net,
        "fsdp_s": dense * (2 * 2 + 4) * share / net,
        "muon_gather_s": (dense - adamw) * 2 * share / net,
    }
    return {
        "gpus": gpus, "params_total": total, "params_active": active,
        "params_routed_experts": experts, "params_dense": dense,
        "state_gb_per_gpu": state / 1e9, "transient_gb_per_gpu": transient / 1e9,
        "fits_h200": (state + transient) < H200_MEMORY * 0.9,
        "tokens_per_step": tokens_per_step, "mfu": mfu, "net_gb_per_s": net_gbs, **times,
        "step_s_if_no_overlap": sum(times.values()),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--gpus", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--tokens-per-step", type=int, default=4 * 2**20)
    parser.add_argument("--mfu", type=float, default=0.35)
    parser.add_argument("--net-gb-per-s", type=float, default=50.0, help="per-GPU network, GB/s")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved 1-rank/2-rank rounds")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = corpus(root / "corpus.txt", 400_000)
        rounds = [[measure(root, args, data, n) for n in (1, 2)] for _ in range(args.repeats)]
    runs = [min((r[i] for r in rounds), key=lambda m: m["step_s_median"]) for i in (0, 1)]
    for i, run in enumerate(runs):
        run["step_s_medians_all_rounds"] = [r[i]["step_s_median"] for r in rounds]
    gap = max(abs(a - b) for a, b in zip(runs[0]["losses"], runs[1]["losses"], strict=True))
    result = {
        "measured": runs, "max_loss_gap_1_vs_2": gap,
        "step_time_ratio_2_over_1": runs[1]["step_s_median"] / runs[0]["step_s_median"],
        "estimate": [estimate(g, args.tokens_per_step, args.mfu, args.net_gb_per_s)
                     for g in args.gpus],
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
