"""`openk2 embedded vision-tasks|vision-train|vision-eval`: teach the embedded model to see and
measure it (the synthetic visual world of `openk2.embedded.vision`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openk2.cli.embedded_commands import embedded_app

if TYPE_CHECKING:
    from openk2.embedded.vision.evaluate import Answered
    from openk2.embedded.vision.tasks import VisualTask


@embedded_app.command("vision-tasks")
def vision_tasks_command(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/embedded-vision"),
    heldout: Annotated[int, typer.Option(min=1, help="Held-out tasks of each kind.")] = 100,
    seed: Annotated[int, typer.Option(help="Held-out seed (training draws seed 0).")] = 1,
) -> None:
    """Write held-out image and video questions (chat messages with data URLs) as JSONL,
    e.g. for `vision-eval --tasks DIR --base-url URL` against a server."""
    from openk2.embedded.vision.tasks import IMAGE_FAMILIES, VIDEO_FAMILIES, generate, write_tasks

    for kind, families in (("image", IMAGE_FAMILIES), ("video", VIDEO_FAMILIES)):
        path = out / f"heldout_{kind}.jsonl"
        rows = write_tasks(path, generate(heldout, seed=seed, split="heldout", families=families))
        typer.echo(f"{rows} {kind} tasks -> {path}")


@embedded_app.command("vision-train")
def vision_train_command(
    text_model: Annotated[str, typer.Option(help="Frozen text model: 'embedded' or a dir.")]
    = "embedded",
    out_dir: Annotated[Path, typer.Option(help="Run directory (final/ is written here).")]
    = Path("runs/embedded-vision"),
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 400,
    batch_size: Annotated[int, typer.Option(min=1, help="Tasks per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak LR of the vision tower.")] = 1e-3,
    families: Annotated[str, typer.Option(help="Comma-separated task families "
                                          "(default: all).")] = "",
    scale_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the media-token "
                                                "scale penalty.")] = 0.0,
    threads: Annotated[int, typer.Option(min=1, help="torch threads.")] = 1,
    seed: Annotated[int, typer.Option(help="Run seed (init, task stream).")] = 0,
    freeze_text: Annotated[bool, typer.Option(help="Keep the text model frozen.")] = False,
    eval_interval: Annotated[int, typer.Option(min=1, help="Validate and save final/ "
                                               "every N steps.")] = 60,
    eval_tasks: Annotated[int, typer.Option(min=1, help="Validation tasks.")] = 32,
) -> None:
    """Train a MoonViT-3D tower + projector in front of the embedded text model (fine-tuned
    with them unless --freeze-text)."""
    from openk2.embedded import resolve_model
    from openk2.embedded.vision.train import VisionTrainSpec, train_vision
    from openk2.tokenizer import load_tokenizer

    path = resolve_model(text_model)
    spec = VisionTrainSpec(text_model=path, out_dir=out_dir, steps=steps, batch_size=batch_size,
                           lr=lr, threads=threads, seed=seed, train_text=not freeze_text,
                           eval_interval=eval_interval, eval_tasks=eval_tasks,
                           scale_weight=scale_weight)
    if families:
        spec.families = _families(families)
    train_vision(spec, load_tokenizer(path), on_log=typer.echo)
    typer.echo(f"final: {out_dir / 'final'} (ship it with `openk2 embedded export`)")


@embedded_app.command("vision-eval")
def vision_eval_command(
    model: Annotated[str, typer.Option(help="'embedded-vl' or a multimodal checkpoint dir "
                                       "(the model id with --base-url).")] = "embedded-vl",
    base_url: Annotated[str | None, typer.Option(help="Grade through this running server "
                                                 "(OpenAI API) instead of the model itself.")]
    = None,
    tasks_dir: Annotated[Path | None, typer.Option("--tasks", help="Directory with "
                                                   "heldout_{image,video}.jsonl; default: "
                                                   "generate them.")] = None,
    heldout: Annotated[int, typer.Option(min=1, help="Generated tasks of each kind.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of generated held-out tasks.")] = 1,
    families: Annotated[str, typer.Option(help="Comma-separated families of generated "
                                          "tasks (default: all).")] = "",
    threads: Annotated[int, typer.Option(min=1, help="torch threads (direct only).")] = 1,
    report: Annotated[Path | None, typer.Option(help="Write every answer as JSON.")] = None,
) -> None:
    """Held-out exact accuracy per family, with 95% CIs and chance levels."""
    from openk2.embedded.vision.evaluate import report_rows
    from openk2.embedded.vision.tasks import read_tasks

    if tasks_dir is not None:
        tasks = [t for kind in ("image", "video")
                 for t in read_tasks(tasks_dir / f"heldout_{kind}.jsonl")]
    else:
        tasks = _generated(heldout, seed, _families(families) if families else None)
    if base_url is not None:
        from openk2.embedded.vision.served import evaluate_served

        graded, summary = evaluate_served(base_url, model, tasks)
    else:
        graded, summary = _direct(model, tasks, threads)
    if report:
        report.write_text(json.dumps({"summary": summary, "answers": report_rows(graded)},
                                     indent=1) + "\n")
    typer.echo(json.dumps(summary, indent=1))


def _generated(heldout: int, seed: int, families: tuple[str, ...] | None) -> list[VisualTask]:
    """`heldout` tasks of each kind (image, video) over `families` (default: all)."""
    from openk2.embedded.vision.tasks import IMAGE_FAMILIES, VIDEO_FAMILIES, generate

    kinds = [[f for f in kind if families is None or f in families]
             for kind in (IMAGE_FAMILIES, VIDEO_FAMILIES)]
    return [t for chosen in kinds if chosen
            for t in generate(heldout, seed=seed, split="heldout", families=chosen)]


def _direct(model: str, tasks: list[VisualTask],
            threads: int) -> tuple[list[Answered], dict[str, Any]]:
    import torch

    from openk2.embedded import resolve_model
    from openk2.embedded.vision.evaluate import evaluate_direct
    from openk2.model.vision.checkpoint import load_multimodal
    from openk2.tokenizer import load_tokenizer

    torch.set_num_threads(threads)
    path = resolve_model(model)
    try:
        mm = load_multimodal(path, dtype=torch.float32)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    return evaluate_direct(mm, load_tokenizer(path), tasks)


def _families(text: str) -> tuple[str, ...]:
    """The named families, each checked against the known ones."""
    from openk2.embedded.vision.tasks import IMAGE_FAMILIES, VIDEO_FAMILIES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in IMAGE_FAMILIES + VIDEO_FAMILIES]
    if unknown or not names:
        raise typer.BadParameter(f"unknown families {unknown}; known: "
                                 f"{', '.join(IMAGE_FAMILIES + VIDEO_FAMILIES)}")
    return names
