"""Where a CPU training step's time goes on the `tiny` preset, and whether bf16 autocast helps.

Times (best of --reps, to filter out load from other jobs on shared machines):
- forward+backward in fp32 vs under bf16 autocast;
- with max-logit recording (eager attention, needed by QK-Clip) vs without (SDPA);
- the Muon (NS5) optimizer step vs the AdamW step over the same model.

    .venv/bin/python benchmarks/train_step.py --reps 5
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from openk2.model.config import get_preset
from openk2.model.model import build_model
from openk2.train import hooks
from openk2.train.build import build_optimizer
from openk2.train.config import OptimConfig
from openk2.train.loop import autocast, lm_loss_sum


def best_of(reps: int, fn: Callable[[], None]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    model = build_model(get_preset(args.preset), seed=0)
    vocab = model.config.vocab_size
    x = torch.randint(0, vocab, (args.batch, args.seq_len))
    y = torch.randint(0, vocab, (args.batch, args.seq_len))

    def fwd_bwd(precision: str) -> Callable[[], None]:
        def step() -> None:
            with autocast(precision):
                logits = model(x)
            (lm_loss_sum(logits, y) / y.numel()).backward()

        return step

    results: dict[str, float] = {}
    for record in (True, False):
        hooks.enable_recording(model, logits=record, load=True)
        for precision in ("float32", "bfloat16"):
            key = f"fwd_bwd_{precision}_{'eager_record' if record else 'sdpa'}"
            results[key] = best_of(args.reps, fwd_bwd(precision))
    fwd_bwd("float32")()
    for name in ("muonclip", "adamw"):
        opt = build_optimizer(model, OptimConfig(name=name))  # type: ignore[arg-type]
        results[f"optimizer_step_{name}"] = best_of(args.reps, opt.step)
    tokens = args.batch * args.seq_len
    report = {k: round(v, 3) for k, v in results.items()}
    report["tokens"] = tokens
    report["fp32_train_tok_per_s"] = round(tokens / results["fwd_bwd_float32_eager_record"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
