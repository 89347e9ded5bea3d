"""Teach the embedded model to see: a small MoonViT-3D + PatchMerger trained with the shipped
text model on the seeded visual tasks, giving the `embedded-vl` sibling.

The run builds `KimiK25ForConditionalGeneration` from the text checkpoint and a fresh
`EMBEDDED_VISION` tower and trains it all (or, `train_text=False`, the vision side alone in
front of a frozen text model) with AdamW (`optimizer_for` says why not Muon) under a WSD
schedule. Frozen
was tried first: the text model's prior for a tool call after a user turn costs ~20 nats
against a plain one-word answer, and 100 steps moved no held-out answer. Every batch is
freshly generated (`tasks.make_task` on the `train` split: no scene repeats), so held-out
accuracy measures unseen scenes. `final/` is a K2.5-layout checkpoint (`save_multimodal`)
plus the tokenizer, rewritten at every validation: what `load_multimodal` reads.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from openk2.embedded.vision.evaluate import evaluate_direct
from openk2.embedded.vision.inputs import task_chat
from openk2.embedded.vision.tasks import IMAGE_FAMILIES, VIDEO_FAMILIES, VisualTask, make_task
from openk2.model.vision import KimiK25ForConditionalGeneration, VisionConfig
from openk2.model.vision.checkpoint import save_multimodal
from openk2.model.vision.processor import MEDIA_PAD
from openk2.model.vision.tower import init_vision_modules
from openk2.train.metrics import MetricsLog, StepMetrics
from openk2.train.multimodal import collate, freeze_language_model, media_train_step
from openk2.train.optim.groups import GroupHyper, param_groups
from openk2.train.optim.muon import MuonAdamW
from openk2.train.optim.schedule import ScheduleConfig

EMBEDDED_VISION: dict[str, Any] = dict(
    vt_hidden_size=128, vt_num_hidden_layers=4, vt_num_attention_heads=4,
    vt_intermediate_size=256, init_pos_emb_height=16, init_pos_emb_width=16,
    mm_hidden_size=128,
)  # fmt: skip
"""The embedded tower: 4 blocks of width 128 (head dim 32), a 16x16 position grid (images
up to 224 px per side keep their own resolution); about 1M parameters with the projector."""


@dataclass(kw_only=True, slots=True)
class VisionTrainSpec:
    """One vision training run."""

    text_model: str
    """Directory of the frozen text model (the shipped embedded checkpoint)."""
    out_dir: Path = Path("runs/embedded-vision")
    steps: int = 400
    batch_size: int = 16
    lr: float = 1e-3
    """Peak AdamW LR of the vision tower."""
    text_lr: float = 3e-4
    """Peak LR of the text model when it trains."""
    projector_lr: float = 1e-3
    """Peak AdamW LR of the projector."""
    scale_weight: float = 0.0
    """Weight of `train.multimodal.scale_penalty` (media tokens at the text-embedding norm)."""
    projector_out_std: float = 0.002
    """Init std of the projector's last Linear: media tokens start near the text embeddings'
    scale instead of ~5x above it."""
    weight_decay: float = 0.01
    warmup_steps: int = 30
    decay_fraction: float = 0.3
    grad_clip: float = 1.0
    families: tuple[str, ...] = IMAGE_FAMILIES + VIDEO_FAMILIES
    video_share: float = 0.4
    """Fraction of each batch that is video (clips cost ~8x the patches of an image)."""
    seed: int = 0
    threads: int = 1
    eval_interval: int = 60
    eval_tasks: int = 32
    """Validation tasks (split `val`) graded every `eval_interval` steps."""
    vision: dict[str, Any] = field(default_factory=lambda: dict(EMBEDDED_VISION))
    train_text: bool = True
    """Fine-tune the text model with the tower (False: train the vision side only)."""


def build_vision_model(text_model: str, vision: dict[str, Any], seed: int,
                       media_pad_id: int, *, train_text: bool = False,
                       projector_out_std: float = 0.02) -> KimiK25ForConditionalGeneration:
    """The frozen text model with a freshly initialised vision tower and projector;
    `media_pad_id` is the tokenizer's `<|media_pad|>` (the embedded vocabulary's own id)."""
    from openk2.model.weights import load_model

    lm = load_model(text_model, dtype=torch.float32)
    config = VisionConfig(**{**vision, "text_hidden_size": lm.config.hidden_size})
    with torch.device("meta"):
        model = KimiK25ForConditionalGeneration(lm.config, config, media_pad_token_id=media_pad_id)
    model.language_model = lm
    model.vision_tower.to_empty(device="cpu")
    model.mm_projector.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    init_vision_modules(model.vision_tower, generator)
    init_vision_modules(model.mm_projector, generator)
    torch.nn.init.normal_(model.mm_projector.proj[2].weight, std=projector_out_std,
                          generator=generator)
    if not train_text:
        freeze_language_model(model)
    return model


def media_pad_id(tokenizer: Any) -> int:
    (pad,) = tokenizer.encode(MEDIA_PAD)
    return int(pad)


def family_stream(spec: VisionTrainSpec) -> Iterator[str]:
    """Families of the training tasks, video at `video_share` of the draws."""
    rng = random.Random(spec.seed)
    images = [f for f in spec.families if f in IMAGE_FAMILIES]
    videos = [f for f in spec.families if f in VIDEO_FAMILIES]
    while True:
        pool = videos if videos and (not images or rng.random() < spec.video_share) else images
        yield rng.choice(pool)


def optimizer_for(model: KimiK25ForConditionalGeneration, spec: VisionTrainSpec) -> MuonAdamW:
    """AdamW for every part: the tower at `lr`, the text model at `text_lr`, the projector at
    `projector_lr`. With Muon on the tower and text model the run stayed at chance (held-out
    23.8% vs 24.8% blind after 400 steps); with AdamW a 120-step run answers a solid colour
    correctly on every held-out image. The `colour` family (a 16-26 px shape among up to
    three) still stays at chance after 200-300 AdamW steps of 8: the tower must learn to
    localise, which this budget does not reach."""
    groups = []
    for part, lr in ((model.vision_tower, spec.lr), (model.language_model, spec.text_lr),
                     (model.mm_projector, spec.projector_lr)):
        if any(p.requires_grad for p in part.parameters()):
            hyper = GroupHyper(lr=lr, weight_decay=spec.weight_decay, use_muon=False)
            groups += param_groups(part, hyper)
    return MuonAdamW(groups)


def validation_tasks(spec: VisionTrainSpec) -> list[VisualTask]:
    return [make_task(spec.families[i % len(spec.families)], seed=spec.seed, split="val",
                      index=i) for i in range(spec.eval_tasks)]


def train_vision(spec: VisionTrainSpec, tokenizer: Any,
                 on_log: Callable[[str], None] = print) -> KimiK25ForConditionalGeneration:
    """Run the whole stage; writes metrics.jsonl, eval.jsonl and final/ under `out_dir`."""
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    model = build_vision_model(spec.text_model, spec.vision, spec.seed,
                               media_pad_id(tokenizer), train_text=spec.train_text,
                               projector_out_std=spec.projector_out_std)
    optimizer = optimizer_for(model, spec)
    schedule = ScheduleConfig(kind="wsd", warmup_steps=spec.warmup_steps,
                              decay_fraction=spec.decay_fraction)
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    log, families, val = MetricsLog(spec.out_dir / "metrics.jsonl"), family_stream(spec), None
    log.truncate_after(0)
    start, index = time.perf_counter(), 0
    target = float(model.language_model.model.embed_tokens.weight.detach().norm(dim=-1).mean())
    for step in range(spec.steps):
        batch_tasks = []
        for _ in range(spec.batch_size):
            batch_tasks.append(make_task(next(families), seed=spec.seed, split="train",
                                         index=index))
            index += 1
        batch = collate([task_chat(t, tokenizer, with_answer=True) for t in batch_tasks],
                        tokenizer.pad_id)
        metrics = media_train_step(model, optimizer, batch, step=step, total_steps=spec.steps,
                                   schedule=schedule, grad_clip=spec.grad_clip,
                                   scale_weight=spec.scale_weight, target_norm=target)
        log.write(metrics)
        if metrics.step % 20 == 0:
            on_log(_line(metrics, time.perf_counter() - start))
        if metrics.step % spec.eval_interval == 0 or metrics.step == spec.steps:
            val = val or validation_tasks(spec)
            _validate(model, tokenizer, val, metrics, spec.out_dir, on_log)
            save_final(model, spec)  # a run stopped early still leaves its latest model
    return model


def _line(metrics: StepMetrics, elapsed: float) -> str:
    return (f"step {metrics.step} loss {metrics.loss:.4f} lr {metrics.lr:.2e} "
            f"grad {metrics.grad_norm:.2f} {metrics.seconds:.2f}s/step {elapsed / 60:.1f} min")


def _validate(model: KimiK25ForConditionalGeneration, tokenizer: Any, tasks: Sequence[VisualTask],
              metrics: StepMetrics, out_dir: Path, on_log: Callable[[str], None]) -> None:
    _, summary = evaluate_direct(model, tokenizer, tasks)
    acc = {k: v["accuracy"] for k, v in summary["groups"].items()}
    scale = media_scale(model, tokenizer, tasks[0])
    with (out_dir / "eval.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"step": metrics.step, "accuracy": acc, **scale}) + "\n")
    on_log(f"val step {metrics.step}: " + " ".join(f"{k}={v:.2f}" for k, v in acc.items())
           + " | " + " ".join(f"{k}={v:.3f}" for k, v in scale.items()))


@torch.no_grad()
def media_scale(model: KimiK25ForConditionalGeneration, tokenizer: Any,
                task: VisualTask) -> dict[str, float]:
    """Mean norm of one item's media tokens, their spread across tokens, and the mean norm
    of the text embeddings: the health check of the projector."""
    from openk2.model.vision.processor import pack_items

    pixels, grid = pack_items(task_chat(task, tokenizer, with_answer=False).items)
    media_ND = model.media_embeddings(pixels, grid)
    table = model.language_model.model.embed_tokens.weight
    return {"media_norm": float(media_ND.norm(dim=-1).mean()),
            "media_spread": float((media_ND - media_ND.mean(0)).norm(dim=-1).mean()),
            "text_norm": float(table.norm(dim=-1).mean())}


def save_final(model: KimiK25ForConditionalGeneration, spec: VisionTrainSpec) -> Path:
    """`final/`: the K2.5-layout checkpoint, the tokenizer files and the run's spec."""
    from openk2.tokenizer.resolve import copy_tokenizer, resolve_tokenizer

    final = spec.out_dir / "final"
    save_multimodal(model, final)
    copy_tokenizer(resolve_tokenizer(spec.text_model), final)
    spec_json = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}
    (final / "vision_train.json").write_text(json.dumps(spec_json, indent=1) + "\n")
    return final
