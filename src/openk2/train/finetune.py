"""`openk2 finetune`: one data file to a LoRA fine-tuned model, measured before and after.

The run-file machinery (`TrainConfig`, `build_run`, `train`, `finish_run`) does the training; this
module only decides the config from the data (chat JSONL, OpenAI or ShareGPT: loss on the
assistant's tokens; plain text, a .txt file of paragraphs or JSONL of `{"text": ...}` lines: loss
on every token), holds out a seeded split, and evaluates on it:
- loss: mean next-token cross-entropy over target tokens (assistant tokens for chats);
- token_accuracy: the share of target tokens that are the model's argmax;
- exact_match (chats): the share of held-out chats whose every assistant token is the argmax,
  i.e. greedy decoding would reproduce each answer exactly given its context.
Adapters skip routed experts so `final/adapter/` is a PEFT adapter beside the merged `final/`.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from openk2.train.config import DataConfig, LoRAConfig, ModelSpec, OptimConfig, TrainConfig
from openk2.train.data import IGNORE, iter_jsonl

Kind = Literal["pretrain", "sft"]


@dataclass(kw_only=True, slots=True)
class FinetuneOptions:
    """What the one-line command lets a user choose."""

    data: Path
    base: str
    out_dir: Path
    lora_rank: int = 8
    epochs: float = 1.0
    held_out: float = 0.1
    seq_len: int = 512
    batch_size: int = 4
    lr: float = 2e-3
    seed: int = 0
    threads: int | None = None


def data_kind(path: Path) -> Kind:
    """'sft' for chat JSONL (OpenAI `messages` or ShareGPT `conversations`), 'pretrain' for
    JSONL of `{"text": ...}` lines or any other file, read as plain text (the first line
    decides, so a JSONL file holds one format)."""
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if path.suffix != ".jsonl":
        _refuse_unmarked_jsonl(path)
        return "pretrain"
    for _, obj in iter_jsonl(path):
        if "text" in obj and not ({"messages", "conversations"} & set(obj)):
            return "pretrain"
        return "sft"
    raise ValueError(f"{path}: no data lines")


def _refuse_unmarked_jsonl(path: Path) -> None:
    """A plain-text file whose first line is a JSON object is JSONL under the wrong name:
    training on its braces and keys as prose would be silent garbage."""
    with path.open(encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return
    if isinstance(obj, dict):
        raise ValueError(
            f"{path}: looks like JSONL (line 1 is a JSON object) but is not named .jsonl; "
            'rename it to .jsonl (chats or {"text": ...} lines) or give plain text'
        )


def check_base(base: str) -> None:
    """The base must be a saved model directory (`embedded` is resolved before this)."""
    if not (Path(base) / "config.json").is_file():
        raise FileNotFoundError(
            f"base model not found: {base} has no config.json; give `embedded` or a model "
            "directory saved by openk2 (e.g. a run's final/)"
        )


def check_data(path: Path, kind: Kind) -> int:
    """Validate every example before any model is loaded; return how many there are."""
    from openk2.train.chat_formats import chat_from_line
    from openk2.train.data import iter_documents

    if kind == "pretrain":
        return sum(1 for _ in iter_documents([path]))
    count = 0
    for lineno, obj in iter_jsonl(path):
        try:
            chat_from_line(obj)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from exc
        count += 1
    return count


def split_data(path: Path, out_dir: Path, fraction: float, seed: int) -> tuple[Path, Path]:
    """Write a seeded (train, held-out) split: JSONL lines, or blank-line-separated paragraphs."""
    jsonl = path.suffix == ".jsonl"
    text = path.read_text(encoding="utf-8")
    items = [ln for ln in text.splitlines() if ln.strip()] if jsonl else _paragraphs(text)
    if len(items) < 2:
        raise ValueError(f"{path}: need at least 2 examples to hold one out, found {len(items)}")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_held = min(len(items) - 1, max(1, round(len(items) * fraction)))
    held = set(order[:n_held])
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix, sep = (".jsonl", "\n") if jsonl else (".txt", "\n\n")
    paths = out_dir / f"train{suffix}", out_dir / f"held_out{suffix}"
    for dest, keep in zip(paths, (False, True), strict=True):
        chosen = [items[i] for i in range(len(items)) if (i in held) == keep]
        dest.write_text(sep.join(chosen) + "\n", encoding="utf-8")
    return paths


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def finetune_config(opts: FinetuneOptions, train_file: Path, kind: Kind) -> TrainConfig:
    """The run config: LoRA (no routed experts) on the base, AdamW, one warm-up step, WSD."""
    from openk2.train.optim.schedule import ScheduleConfig

    return TrainConfig(
        model=ModelSpec(preset=None, path=opts.base),
        data=DataConfig(kind=kind, train_files=[str(train_file)], seq_len=opts.seq_len),
        optim=OptimConfig(name="adamw", lr=opts.lr, weight_decay=0.0),
        schedule=ScheduleConfig(warmup_steps=1),
        lora=LoRAConfig(
            enabled=True, rank=opts.lora_rank, alpha=2.0 * opts.lora_rank, routed_experts=False
        ),  # fmt: skip
        steps=1,  # set from the epochs once the rows are known
        batch_size=opts.batch_size,
        seed=opts.seed,
        out_dir=str(opts.out_dir),
        resume=False,
        threads=opts.threads,
    )


@torch.no_grad()
def evaluate(model: nn.Module, rows: Any, *, chats: bool) -> dict[str, float]:
    """Held-out loss, token accuracy and (chats, one per row) exact-answer accuracy."""
    model.eval()
    loss_sum, correct, targets, exact = 0.0, 0, 0, 0
    for i in range(len(rows)):
        inputs, labels = rows[i]
        logits = model(inputs[None])[0].float()
        mask = labels != IGNORE
        loss_sum += torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="sum")
        hits = logits[mask].argmax(-1) == labels[mask]
        correct, targets = correct + int(hits.sum()), targets + int(mask.sum())
        exact += bool(hits.all())
    model.train()
    out = {"loss": round(float(loss_sum) / max(targets, 1), 4),
           "token_accuracy": round(correct / max(targets, 1), 4)}  # fmt: skip
    if chats:
        out["exact_match"] = round(exact / len(rows), 4)
    return out


def run_finetune(opts: FinetuneOptions) -> dict[str, Any]:
    """Split, evaluate the base, train for the epochs, evaluate again, save; return a summary."""
    from openk2.train.build import build_rows, build_run
    from openk2.train.finish import finish_run
    from openk2.train.loop import train
    from openk2.train.text import load_codec

    kind = data_kind(opts.data)
    check_data(opts.data, kind)
    train_file, held_file = split_data(opts.data, opts.out_dir / "data", opts.held_out, opts.seed)
    check_base(opts.base)
    cfg = finetune_config(opts, train_file, kind)
    run = build_run(cfg)
    held_cfg = DataConfig(kind=kind, train_files=[str(held_file)], seq_len=opts.seq_len,
                          pack=False)  # fmt: skip
    held = build_rows(held_cfg, load_codec(cfg, run.tokenizer))
    cfg.steps = max(1, math.ceil(opts.epochs * len(run.loader.rows) / opts.batch_size))
    before = evaluate(run.model, held, chats=kind == "sft")
    train(run)
    after = evaluate(run.model, held, chats=kind == "sft")
    summary = finish_run(run) | {"held_out_rows": len(held), "before": before, "after": after}
    (opts.out_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
