"""A small long-context experiment: train a tiny K2-architecture model on passkey retrieval at a
short length, then measure a length x depth grid far past it under four position treatments.

Task (a single-needle passkey, the simplest RULER-style NIAH): a haystack of random filler
tokens hides one needle `KEY v` at a relative depth, where v is one of 64 value tokens that appear
nowhere else; the prompt ends with `QUERY` and the model must answer v (chance 1/64). Exact match
of the greedy token, generated through `LLMEngine` (chunked prefill over the paged cache).

Treatments at test time (the model is trained once, with plain RoPE, at `--train-len` tokens):
none (plain RoPE), PI (every frequency divided by the factor), NTK-aware (rope_theta scaled by
factor^(d/(d-2))), YaRN (K2's form: beta 32/1, mscale 1/1, so the logit scale changes by
(0.1 ln f + 1)^2), and YaRN after a short fine-tune at 4x the training length. Effective length
per treatment, after RULER: the longest tested length up to which every length's mean accuracy
over depths is >= 85 % (and, relative, >= 85 % of the plain model's accuracy at 1x).

    PYTHONPATH=src .venv/bin/python benchmarks/niah_small.py --steps 600
Writes benchmarks/figures/niah_small.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "benchmarks" / "figures"
KEY, QUERY = 10, 11
VALUES = range(20, 84)
"""Value tokens: only ever the needle's second token and the answer."""
FILLER = range(100, 500)
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
THRESHOLD = 0.85


@dataclass(frozen=True)
class Sample:
    prompt: list[int]
    answer: int


def make_sample(rng: random.Random, length: int, depth: float) -> Sample:
    """`length` prompt tokens: filler with `KEY v` at `depth`, then `QUERY`."""
    filler = [rng.choice(FILLER) for _ in range(length - 3)]
    value = rng.choice(VALUES)
    at = round(depth * len(filler))
    return Sample(filler[:at] + [KEY, value] + filler[at:] + [QUERY], value)


def base_config(train_len: int, max_len: int):  # noqa: ANN201
    """The debug preset, 2 dense layers, plain RoPE; positions allowed up to `max_len`."""
    from openk2.model import get_preset

    return get_preset("debug").replace(
        num_hidden_layers=2, first_k_dense_replace=2, max_position_embeddings=max_len,
        rope_scaling=None,
    )  # fmt: skip


def treatments(config, factor: float, train_len: int) -> dict:  # noqa: ANN001
    """Config per position treatment (same weights)."""
    dim = config.qk_rope_head_dim
    yarn = {"type": "yarn", "factor": factor, "original_max_position_embeddings": train_len,
            "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}  # fmt: skip
    # tiny betas put every dimension past the ramp: all frequencies interpolated, no temperature
    pi = {**yarn, "beta_fast": 1e-9, "beta_slow": 1e-9, "mscale": 0.0, "mscale_all_dim": 0.0}
    return {
        "none": config,
        "PI": config.replace(rope_scaling=pi),
        "NTK": config.replace(rope_theta=config.rope_theta * factor ** (dim / (dim - 2))),
        "YaRN": config.replace(rope_scaling=yarn),
    }


def train(model, config, length: int, steps: int, lr: float, seed: int, log: str) -> None:  # noqa: ANN001
    """AdamW on the answer token's cross-entropy, batches of 32 fresh samples."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for step in range(steps):
        batch = [make_sample(rng, length, rng.random()) for _ in range(32)]
        ids = torch.tensor([s.prompt for s in batch])
        logits = model(ids, logits_to_keep=1)[:, -1]
        loss = F.cross_entropy(logits.float(), torch.tensor([s.answer for s in batch]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50) * (1 - step / steps) ** 0.5
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            acc = (logits.argmax(-1) == torch.tensor([s.answer for s in batch])).float().mean()
            print(f"{log} step {step} loss {loss.item():.3f} batch acc {acc.item():.2f}",
                  file=sys.stderr, flush=True)  # fmt: skip
    model.eval()


def evaluate(model, lengths: list[int], per_cell: int, seed: int) -> dict[str, float]:  # noqa: ANN001
    """Accuracy per "length:depth" cell, every prompt through one LLMEngine."""
    sys.path.insert(0, str(ROOT / "tests"))
    from engine.fakes import ByteTokenizer
    from openk2.engine.config import EngineConfig
    from openk2.engine.llm_engine import LLMEngine
    from openk2.engine.sampling_params import SamplingParams

    rng = random.Random(seed)
    cells = [(n, d) for n in lengths for d in DEPTHS]
    samples = [(c, make_sample(rng, c[0], c[1])) for c in cells for _ in range(per_cell)]
    engine = LLMEngine(model, ByteTokenizer(vocab_size=model.config.vocab_size),
                       EngineConfig(max_model_len=max(lengths) + 8, max_num_seqs=16,
                                    max_num_batched_tokens=4096))  # fmt: skip
    params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
    outs = engine.generate([s.prompt for _, s in samples], params)
    hits: dict[str, list[bool]] = {}
    for (cell, sample), (out,) in zip(samples, outs, strict=True):
        hits.setdefault(f"{cell[0]}:{cell[1]}", []).append(out.token_ids == [sample.answer])
    return {k: sum(v) / len(v) for k, v in hits.items()}


def effective_length(grid: dict[str, float], lengths: list[int], threshold: float) -> int:
    """Longest length up to which every length's mean over depths is >= threshold (0 if none)."""
    best = 0
    for n in lengths:
        if sum(grid[f"{n}:{d}"] for d in DEPTHS) / len(DEPTHS) < threshold:
            break
        best = n
    return best


def summarize(results: dict, lengths: list[int]) -> None:
    """Mean accuracy per length and the effective lengths, absolute (THRESHOLD, as RULER) and
    relative (THRESHOLD x the untreated model's accuracy at its training length: a small model
    need not reach RULER's bar at all, but the question is what each treatment keeps)."""
    base = sum(results["none"]["grid"][f"{lengths[0]}:{d}"] for d in DEPTHS) / len(DEPTHS)
    for name, res in results.items():
        res["effective_length"] = effective_length(res["grid"], lengths, THRESHOLD)
        res["relative_effective_length"] = (
            effective_length(res["grid"], lengths, THRESHOLD * base) if base > 0 else 0
        )
        means = [sum(res["grid"][f"{n}:{d}"] for d in DEPTHS) / len(DEPTHS) for n in lengths]
        res["mean_by_length"] = dict(zip(map(str, lengths), means, strict=True))
        print(f"| {name} | {res['effective_length']} | {res['relative_effective_length']} | "
              + " | ".join(f"{m:.2f}" for m in means) + " |")  # fmt: skip


def plot(results: dict, lengths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), sharey=True)
    for ax, name in zip(axes, names, strict=True):
        grid = [[results[name]["grid"][f"{n}:{d}"] for n in lengths] for d in DEPTHS]
        ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto", origin="lower")
        ax.set_xticks(range(len(lengths)), [str(n) for n in lengths], rotation=60, fontsize=7)
        ax.set_yticks(range(len(DEPTHS)), [f"{d:.0%}" for d in DEPTHS])
        eff = results[name]["relative_effective_length"]
        ax.set_title(f"{name}\nrelative effective length {eff}", fontsize=8)
        ax.set_xlabel("prompt tokens")
    axes[0].set_ylabel("needle depth")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _replot() -> None:
    data = json.loads((FIGURES / "niah_small.json").read_text())
    meta = data.pop("meta")
    summarize(data, meta["lengths"])
    (FIGURES / "niah_small.json").write_text(json.dumps({"meta": meta, **data}, indent=1))
    plot(data, meta["lengths"], FIGURES / "niah_small.png")


def main() -> None:
    from openk2.model import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-len", type=int, default=64)
    parser.add_argument("--multiples", default="1,2,4,8,16,32")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--finetune-steps", type=int, default=60)
    parser.add_argument("--per-cell", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replot", action="store_true",
                        help="re-summarise and re-plot figures/niah_small.json, no training")
    args = parser.parse_args()
    if args.replot:
        _replot()
        return
    torch.set_num_threads(1)
    lengths = [args.train_len * int(m) for m in args.multiples.split(",")]
    factor = float(max(lengths) // args.train_len)
    config = base_config(args.train_len, max(lengths) + 64)
    model = build_model(config, seed=args.seed)
    start = time.perf_counter()
    train(model, config, args.train_len, args.steps, args.lr, args.seed, "train")
    trained = time.perf_counter() - start
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results: dict[str, dict] = {}
    for name, cfg in treatments(config, factor, args.train_len).items():
        variant = build_model(cfg, seed=args.seed)
        variant.load_state_dict(state)
        results[name] = {"grid": evaluate(variant.eval(), lengths, args.per_cell, args.seed + 1)}
        if name == "YaRN":
            tuned = build_model(cfg, seed=args.seed)
            tuned.load_state_dict(state)
            train(tuned, cfg, 4 * args.train_len, args.finetune_steps, args.lr / 3,
                  args.seed + 2, "finetune")  # fmt: skip
            grid = evaluate(tuned, lengths, args.per_cell, args.seed + 1)
            results[f"YaRN+ft{4 * args.train_len}"] = {"grid": grid}
    summarize(results, lengths)
    FIGURES.mkdir(parents=True, exist_ok=True)
    meta = {"train_len": args.train_len, "steps": args.steps, "factor": factor,
            "finetune_steps": args.finetune_steps, "per_cell": args.per_cell,
            "train_seconds": trained, "lengths": lengths, "depths": list(DEPTHS)}  # fmt: skip
    (FIGURES / "niah_small.json").write_text(json.dumps({"meta": meta, **results}, indent=1))
    plot(results, lengths, FIGURES / "niah_small.png")


if __name__ == "__main__":
    main()
