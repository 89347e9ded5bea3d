"""LR sweep for `muonclip.py`: one optimizer, several learning rates, one budget, final val loss.

Uses the benchmark's own corpus, model, schedule and validation windows, so its figures can be
set beside `muonclip.py`'s. Each LR is a fresh run from the same seed. Use it to pick each
optimizer's best LR before the side-by-side run:

    .venv/bin/python benchmarks/muonclip_sweep.py adamw --lrs 1e-3,1.5e-3,3e-3 --steps 250
    .venv/bin/python benchmarks/muonclip_sweep.py muonclip --lrs 3e-3,5e-3,8e-3 --steps 175

The swept LR replaces `--lr-adamw` or `--lr-muon`; MuonClip's AdamW groups (embeddings, head,
norms) keep `--lr-adamw`.
"""

from __future__ import annotations

import argparse
import json

from muonclip import add_run_args, float_list, load_corpus, make_run, val_loss
from openk2.train.data import PackedText
from openk2.train.loop import train_step


def final_val(args: argparse.Namespace, lr: float, rows: PackedText, val: PackedText) -> float:
    """Train `args.name` at `lr` for `args.steps` steps; its validation loss at the end."""
    run_args = argparse.Namespace(**vars(args))
    setattr(run_args, "lr_adamw" if args.name == "adamw" else "lr_muon", lr)
    run = make_run(args.name, run_args, rows, args.steps)
    for _ in range(args.steps):
        train_step(run)
    return val_loss(run.model, val, args.val_rows, args.batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=["adamw", "muonclip"])
    parser.add_argument("--lrs", required=True, type=float_list)
    add_run_args(parser, out="benchmarks/results/muonclip-sweep")
    args = parser.parse_args()
    rows, val = load_corpus(args)
    for lr in args.lrs:
        loss = final_val(args, lr, rows, val)
        print(json.dumps({"name": args.name, "lr": lr, "steps": args.steps, "val": round(loss, 4)}))


if __name__ == "__main__":
    main()
