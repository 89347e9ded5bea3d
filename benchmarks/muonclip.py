"""MuonClip vs AdamW on the `tiny` preset: same init, same batches, same tokens, one run.

The two runs step in lockstep (one AdamW step, then one MuonClip step, ...), so load from other
jobs on the shared CPU slows both alike and the wall-clock ratio stays meaningful. Data: the
Python standard library's `.py` sources (present on every machine with this Python; tests,
site-packages and generated tables left out), tokenised with openk2's bundled 8192-id
vocabulary; every 20th file is held out for validation. Keep steps x tokens per step under the
corpus, so no batch repeats.

The headline figure is the *budget ratio*: MuonClip is also trained with shorter budgets
(`--budgets`, fractions of `--steps`), each with its own complete WSD schedule, and the ratio is
the budget at which its final validation loss equals AdamW's final loss at the full budget. That
is how optimizer efficiency is compared at scale (each budget gets its own decay): reading the
step at which MuonClip's full-length run passes AdamW's final loss instead pits AdamW's LR decay
against MuonClip's constant phase. That in-run figure is reported as well, with the wall-clock
ratio, per-step time, max attention logits and QK-Clip events; writes results JSON and a PNG.

    .venv/bin/python benchmarks/muonclip.py --steps 250 --out benchmarks/results/muonclip
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from openk2.tokenizer import default_tokenizer
from openk2.train import hooks
from openk2.train.build import build_model_from_spec, build_optimizer, seed_everything
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


SKIPPED_DIRS = {"test", "tests", "idle_test", "site-packages", "encodings", "pydoc_data"}
"""Tests, third-party code, and generated tables or prose (codec maps, pydoc topics) stay out."""

VAL_EVERY = 20
"""Every 20th source file is held out, so validation code is drawn from the same mix as training."""


def corpus_split(max_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) token streams of the stdlib's sources in sorted order, each file + EOS."""
    tok = default_tokenizer()
    root = Path(sysconfig.get_paths()["stdlib"])
    train: list[int] = []
    val: list[int] = []
    total = 0
    sources = (p for p in root.rglob("*.py") if p.is_file() and not SKIPPED_DIRS & set(p.parts))
    for index, path in enumerate(sorted(sources)):
        text = path.read_text(encoding="utf-8", errors="replace")
        ids = [*tok.encode(text, allow_special=False), tok.eos_id]
        (val if index % VAL_EVERY == VAL_EVERY - 1 else train).extend(ids)
        total += len(text)
        if total >= max_bytes:
            break
    return torch.tensor(train, dtype=torch.int32), torch.tensor(val, dtype=torch.int32)


def make_run(name: str, args: argparse.Namespace, rows: PackedText, steps: int) -> Run:
    """A fresh tiny model (same seed for all) with its own optimizer and identical loader.

    `steps` sets the schedule's length: the WSD decay always takes the last 20% of the run.
    """
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
        steps=steps,
        batch_size=args.batch,
        grad_accum=args.accum,
        seed=args.seed,
    )
    seed_everything(args.seed)
    model = build_model_from_spec(cfg.model, args.seed)
    hooks.enable_recording(model, logits=True, load=True)
    loader = BatchLoader(rows, args.batch, seed=args.seed, shuffle=True)
    return Run(cfg=cfg, model=model, optimizer=build_optimizer(model, optim), loader=loader,
               out_dir=Path(args.out), qk_clip_tau=optim.qk_clip_tau,
               router_bias_rate=optim.router_bias_rate)  # fmt: skip


@torch.no_grad()
def val_loss(model: torch.nn.Module, rows: PackedText, n_rows: int, batch: int) -> float:
    """Mean token loss over `n_rows` windows spread evenly across the held-out files."""
    model.eval()
    stride = max(1, len(rows) // n_rows)
    picked = list(range(0, len(rows), stride))[:n_rows]
    total, count = 0.0, 0
    for start in range(0, len(picked), batch):
        pairs = [rows[i] for i in picked[start : start + batch]]
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
    curves = [Curve(name, make_run(name, args, rows, args.steps)) for name in ("adamw", "muonclip")]
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


def muon_budget_runs(
    args: argparse.Namespace, rows: PackedText, val: PackedText
) -> list[tuple[int, float]]:
    """(steps, final validation loss) of MuonClip trained for each fraction in `--budgets`."""
    finals = []
    for fraction in args.budgets:
        steps = round(fraction * args.steps)
        run = make_run("muonclip", args, rows, steps)
        for _ in range(steps):
            train_step(run)
        finals.append((steps, val_loss(run.model, val, args.val_rows, args.batch)))
        print(f"muonclip with {steps} steps ({fraction:.2f}x): val {finals[-1][1]:.3f}", flush=True)
    return finals


def budget_at_loss(finals: list[tuple[int, float]], target: float) -> float | None:
    """Steps at which the budget curve's final loss reaches `target`, interpolated linearly.

    None when no budget reached it, or when even the smallest did (the ratio is then below the
    range measured and says nothing exact).
    """
    points = sorted(finals, reverse=True)  # from the largest budget down
    for (big, big_loss), (small, small_loss) in itertools.pairwise(points):
        if big_loss <= target < small_loss:
            return small - (small_loss - target) / (small_loss - big_loss) * (small - big)
    return None


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
    budgets = result.get("muonclip_budget_final_val") or []
    assert isinstance(budgets, list)
    by_step.scatter([n for n, _ in budgets], [v for _, v in budgets], marker="*", s=90,
                    color="tab:purple", zorder=3, label="muonclip, own shorter run")  # fmt: skip
    target = result["adamw_final_val"]
    for ax, xlabel in ((by_step, "optimizer step"), (by_time, "training seconds (shared CPU)")):
        ax.axhline(target, color="gray", linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"MuonClip vs AdamW, tiny preset, {result['tokens_per_step']} tokens/step\nMuonClip "
        f"matches AdamW's final val loss with {result.get('budget_ratio')}x the budget "
        f"(in-run: {result['steps_ratio']}x the steps)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def float_list(text: str) -> list[float]:
    """Parse "0.6,0.7,0.8" for list-valued options."""
    return [float(x) for x in text.split(",") if x]


def add_run_args(parser: argparse.ArgumentParser, out: str) -> None:
    """Options shared with `muonclip_sweep.py`: the corpus, batch shape, schedule and seed."""
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--accum", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lr-adamw", type=float, default=3e-3)
    parser.add_argument("--lr-muon", type=float, default=3e-3)
    parser.add_argument("--tau", type=float, default=100.0)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--val-rows", type=int, default=64)
    parser.add_argument("--corpus-mb", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="0 keeps torch's default")
    parser.add_argument("--out", default=out)


def load_corpus(args: argparse.Namespace) -> tuple[PackedText, PackedText]:
    """(train, val) windows; also applies `--threads`, which every script sets first."""
    if args.threads:
        torch.set_num_threads(args.threads)
    train_ids, val_ids = corpus_split(int(args.corpus_mb * 1e6))
    rows, val = PackedText(train_ids, args.seq_len), PackedText(val_ids, args.seq_len)
    print(f"train rows {len(rows)} ({rows.tokens.numel()} tokens), val rows {len(val)}")
    return rows, val


def add_budget_figures(
    result: dict[str, object], curves: list[Curve], finals: list[tuple[int, float]], steps: int
) -> None:
    """The budget ratio, and the wall clock it implies (a MuonClip step costs more than AdamW's)."""
    result["muonclip_budget_final_val"] = [[n, round(v, 4)] for n, v in finals]
    budget = budget_at_loss([*finals, (steps, curves[1].val[-1][1])], curves[0].val[-1][1])
    result["budget_ratio"] = None if budget is None else round(budget / steps, 3)
    if budget is not None:
        per_step = float(result["wall_clock_ratio_per_step"])  # type: ignore[arg-type]
        result["budget_wall_clock_ratio"] = round(budget / steps * per_step, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_args(parser, out="benchmarks/results/muonclip")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument(
        "--budgets",
        type=float_list,
        default=[0.6, 0.7, 0.8],
        help="MuonClip budgets as fractions of --steps, each with its own schedule",
    )
    args = parser.parse_args()
    rows, val = load_corpus(args)
    start = time.perf_counter()
    curves = train_both(args, rows, val)
    result = summarise(curves, args)
    add_budget_figures(result, curves, muon_budget_runs(args, rows, val), args.steps)
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / "muonclip_vs_adamw.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("curves", "args")}, indent=2))


if __name__ == "__main__":
    main()
