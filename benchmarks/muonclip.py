"""MuonClip vs AdamW on the `tiny` preset: same init, same batches, same tokens, one run.

The two runs step in lockstep (one AdamW step, then one MuonClip step, ...), so load from other
jobs on the shared CPU slows both alike and the wall-clock ratio stays meaningful. Data: the
Python standard library's `.py` sources (present on every machine with this Python), tokenised
with openk2's bundled 8192-id vocabulary; the last files are held out for validation.

Reports: steps MuonClip needs to reach AdamW's final validation loss (target <= 0.7x), the same in
wall-clock, per-step time, max attention logits and QK-Clip events; writes results JSON and a
PNG of both curves.

    .venv/bin/python benchmarks/muonclip.py --steps 200 --out benchmarks/results/muonclip
"""

from __future__ import annotations

import argparse
import json
import math
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from openk2.tokenizer import default_tokenizer
from openk2.train import hooks
from openk2.train.build import build_model, build_optimizer, seed_everything
from openk2.train.config import DataConfig, ModelSpec, OptimConfig, TrainConfig
from openk2.train.data import BatchLoader, PackedText
from openk2.train.loop import Run, lm_loss_sum, train_step
from openk2.train.optim.schedule import ScheduleConfig


@dataclass
class Curve:
    """One optimizer's history."""

    name: str
    run: Run
    train: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    max_logit: list[float] = field(default_factory=list)
    clips: int = 0


def corpus_tokens(max_bytes: int) -> torch.Tensor:
    """The stdlib's top-level sources in sorted order, tokenised, each followed by EOS."""
    tok = default_tokenizer()
    root = Path(sysconfig.get_paths()["stdlib"])
    ids: list[int] = []
    total = 0
    for path in sorted(p for p in root.glob("*.py") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        ids.extend(tok.encode(text, allow_special=False))
        ids.append(tok.eos_id)
        total += len(text)
        if total >= max_bytes:
            break
    return torch.tensor(ids, dtype=torch.int32)


def split_rows(tokens: torch.Tensor, seq_len: int) -> tuple[PackedText, PackedText]:
    """(train, val) windows: the last 5% of the token stream is held out."""
    cut = tokens.numel() * 19 // 20
    return PackedText(tokens[:cut], seq_len), PackedText(tokens[cut:], seq_len)


def make_run(name: str, args: argparse.Namespace, rows: PackedText) -> Run:
    """A fresh tiny model (same seed for both) with its own optimizer and identical loader."""
    optim = OptimConfig(
        name=name,  # type: ignore[arg-type]
        lr=args.lr_muon if name == "muonclip" else args.lr_adamw,
        adamw_lr=args.lr_adamw,
        qk_clip_tau=args.tau if name == "muonclip" else None,
        weight_decay=0.1,
    )
    cfg = TrainConfig(
        model=ModelSpec(preset="tiny"),
        data=DataConfig(seq_len=args.seq_len),
        optim=optim,
        schedule=ScheduleConfig(kind="wsd", warmup_steps=args.warmup, decay_fraction=0.2),
        steps=args.steps,
        batch_size=args.batch,
        grad_accum=args.accum,
        seed=args.seed,
    )
    seed_everything(args.seed)
    model = build_model(cfg.model, args.seed)
    hooks.enable_recording(model, logits=True, load=True)
    loader = BatchLoader(rows, args.batch, seed=args.seed, shuffle=True)
    return Run(cfg=cfg, model=model, optimizer=build_optimizer(model, optim), loader=loader,
               out_dir=Path(args.out), qk_clip_tau=optim.qk_clip_tau,
               router_bias_rate=optim.router_bias_rate)  # fmt: skip


@torch.no_grad()
def val_loss(model: torch.nn.Module, rows: PackedText, n_rows: int, batch: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, min(n_rows, len(rows)), batch):
        pairs = [rows[i] for i in range(start, min(start + batch, n_rows, len(rows)))]
        x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        total += float(lm_loss_sum(model(x), y))
        count += y.numel()
    model.train()
    return total / count


def first_step_below(points: list[tuple[int, float]], target: float) -> float | None:
    """First step where the loss reaches `target`, linearly interpolated between evaluations."""
    prev: tuple[int, float] | None = None
    for step, loss in points:
        if loss <= target:
            if prev is None or prev[1] == loss:
                return float(step)
            frac = (prev[1] - target) / (prev[1] - loss)
            return prev[0] + frac * (step - prev[0])
        prev = (step, loss)
    return None


def ema(values: list[float], beta: float = 0.9) -> list[float]:
    out, acc = [], values[0]
    for v in values:
        acc = beta * acc + (1 - beta) * v
        out.append(acc)
    return out


def train_both(args: argparse.Namespace, rows: PackedText, val: PackedText) -> list[Curve]:
    curves = [Curve(name, make_run(name, args, rows)) for name in ("adamw", "muonclip")]
    for step in range(1, args.steps + 1):
        for c in curves:
            m = train_step(c.run)
            c.train.append(m.loss)
            c.seconds.append(m.seconds)
            c.max_logit.append(m.max_logit)
            c.clips += m.clipped_heads
        if step % args.eval_every == 0 or step == args.steps:
            for c in curves:
                c.val.append((step, val_loss(c.run.model, val, args.val_rows, args.batch)))
            print(f"step {step}: " + "  ".join(
                f"{c.name} train {c.train[-1]:.3f} val {c.val[-1][1]:.3f} "
                f"({sum(c.seconds) / step:.2f} s/step)" for c in curves), flush=True)  # fmt: skip
    return curves


def summarise(curves: list[Curve], args: argparse.Namespace) -> dict[str, object]:
    adamw, muon = curves
    target = adamw.val[-1][1]
    reach = first_step_below(muon.val, target)
    t_adamw, t_muon = sum(adamw.seconds), sum(muon.seconds)
    result: dict[str, object] = {
        "args": vars(args),
        "tokens_per_step": args.batch * args.accum * args.seq_len,
        "adamw_final_val": round(target, 4),
        "muonclip_final_val": round(muon.val[-1][1], 4),
        "muonclip_steps_to_adamw_final": None if reach is None else round(reach, 1),
        "steps_ratio": None if reach is None else round(reach / args.steps, 3),
        "seconds_per_step": {c.name: round(sum(c.seconds) / len(c.seconds), 3) for c in curves},
        "wall_clock_ratio_per_step": round(t_muon / t_adamw, 3),
        "max_logit": {
            c.name: round(max(x for x in c.max_logit if math.isfinite(x)), 2) for c in curves
        },  # fmt: skip
        "qk_clip_events": muon.clips,
        "curves": {
            c.name: {"train": c.train, "seconds": c.seconds, "val": c.val, "max_logit": c.max_logit}
            for c in curves
        },
    }
    if reach is not None:
        whole = int(reach)
        t_reach = (
            sum(muon.seconds[:whole])
            + (reach - whole) * muon.seconds[min(whole, len(muon.seconds) - 1)]
        )
        result["wall_clock_ratio_to_target"] = round(t_reach / t_adamw, 3)
    return result


def plot(result: dict[str, object], path: Path) -> None:
    """Left: loss per step (train EMA thin, validation thick); right: validation vs seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = result["curves"]
    assert isinstance(curves, dict)
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, color in (("adamw", "tab:blue"), ("muonclip", "tab:red")):
        c = curves[name]
        steps = list(range(1, len(c["train"]) + 1))
        by_step.plot(steps, ema(c["train"]), color=color, alpha=0.45, linewidth=1,
                     label=f"{name} train (EMA)")  # fmt: skip
        vs, vl = [s for s, _ in c["val"]], [v for _, v in c["val"]]
        by_step.plot(vs, vl, color=color, marker="o", markersize=3, label=f"{name} val")
        elapsed = [sum(c["seconds"][:s]) for s in vs]
        by_time.plot(elapsed, vl, color=color, marker="o", markersize=3, label=f"{name} val")
    target = result["adamw_final_val"]
    for ax, xlabel in ((by_step, "optimizer step"), (by_time, "training seconds (shared CPU)")):
        ax.axhline(target, color="gray", linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"MuonClip vs AdamW, tiny preset, {result['tokens_per_step']} tokens/step: MuonClip "
        f"reaches AdamW's final val loss in {result['steps_ratio']}x the steps"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--accum", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lr-adamw", type=float, default=3e-3)
    parser.add_argument("--lr-muon", type=float, default=3e-3)
    parser.add_argument("--tau", type=float, default=100.0)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--val-rows", type=int, default=32)
    parser.add_argument("--corpus-mb", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="0 keeps torch's default")
    parser.add_argument("--out", default="benchmarks/results/muonclip")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, val = split_rows(corpus_tokens(int(args.corpus_mb * 1e6)), args.seq_len)
    print(f"train rows {len(rows)} ({rows.tokens.numel()} tokens), val rows {len(val)}")
    start = time.perf_counter()
    curves = train_both(args, rows, val)
    result = summarise(curves, args)
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / "muonclip_vs_adamw.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("curves", "args")}, indent=2))


if __name__ == "__main__":
    main()
