"""LR sweep for `muonclip.py`: one optimizer, several learning rates, one budget, final val loss.

Uses the benchmark's own corpus, model, schedule and validation windows, so its figures can be
set beside `muonclip.py`'s. Each LR is a fresh run from the same seed. Use it to pick each
optimizer's best LR before the side-by-side run:

    .venv/bin/python benchmarks/muonclip_sweep.py adamw --lrs 1e-3,1.5e-3,3e-3 --steps 250
    .venv/bin/python benchmarks/muonclip_sweep.py muonclip --lrs 3e-3,5e-3,8e-3 --steps 175
"""

from __future__ import annotations

import argparse
import json

import torch

from muonclip import corpus_split, make_run, val_loss
from openk2.train.data import PackedText
from openk2.train.loop import train_step


def final_val(name: str, lr: float, args: argparse.Namespace) -> float:
    """Train `name` at `lr` for `args.steps` steps; its validation loss at the end."""
    run_args = argparse.Namespace(**vars(args), lr_adamw=3e-3, lr_muon=3e-3, tau=100.0)
    setattr(run_args, "lr_adamw" if name == "adamw" else "lr_muon", lr)  # Muon's norms etc.: 3e-3
    train_ids, val_ids = corpus_split(int(args.corpus_mb * 1e6))
    rows, val = PackedText(train_ids, args.seq_len), PackedText(val_ids, args.seq_len)
    run = make_run(name, run_args, rows, args.steps)
    for _ in range(args.steps):
        train_step(run)
    return val_loss(run.model, val, args.val_rows, args.batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=["adamw", "muonclip"])
    parser.add_argument(
        "--lrs", required=True, type=lambda text: [float(x) for x in text.split(",")]
    )
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--accum", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--val-rows", type=int, default=64)
    parser.add_argument("--corpus-mb", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="0 keeps torch's default")
    parser.add_argument("--out", default="benchmarks/results/muonclip-sweep")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name, lrs = args.name, args.lrs
    del args.name, args.lrs
    for lr in lrs:
        loss = final_val(name, lr, args)
        print(json.dumps({"name": name, "lr": lr, "steps": args.steps, "val": round(loss, 4)}))


if __name__ == "__main__":
    main()
