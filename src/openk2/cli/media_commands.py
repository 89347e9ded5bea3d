"""`openk2 media-tokens`: what images and videos cost in K2.6 prompt tokens (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from openk2.cli import app

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpeg", ".mpg", ".flv", ".wmv", ".3gp"}


@app.command("media-tokens")
def media_tokens_command(
    paths: Annotated[list[Path], typer.Argument(help="image or video files")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file")] = False,
) -> None:
    """Print grid_thw and LM tokens per image, or per 4-frame chunk of a video."""
    from openk2.model.vision.processor import MediaError

    failed = False
    for path in paths:
        try:
            report = _report(path)
        except MediaError as exc:
            typer.echo(f"{path}: error: {exc}", err=True)
            failed = True
            continue
        typer.echo(json.dumps(report) if as_json else _text(report))
    if failed:
        raise typer.Exit(1)


def _report(path: Path) -> dict[str, Any]:
    from openk2.model.vision.processor import load_image, preprocess_image
    from openk2.model.vision.video import video_chunks

    if path.suffix.lower() in VIDEO_SUFFIXES:
        chunks = video_chunks(path)
        items = [
            {"timestamp": c.timestamp, "frames": list(c.frame_indices),
             "grid_thw": list(c.item.grid_thw), "tokens": c.item.num_tokens}
            for c in chunks
        ]  # fmt: skip
        return {"file": str(path), "kind": "video", "chunks": items,
                "tokens": sum(i["tokens"] for i in items)}  # fmt: skip
    item = preprocess_image(load_image(path))
    return {"file": str(path), "kind": "image", "grid_thw": list(item.grid_thw),
            "tokens": item.num_tokens}  # fmt: skip


def _text(report: dict[str, Any]) -> str:
    if report["kind"] == "image":
        return f"{report['file']}: image grid_thw={report['grid_thw']} tokens={report['tokens']}"
    lines = [f"{report['file']}: video, {len(report['chunks'])} chunks, {report['tokens']} tokens"]
    for chunk in report["chunks"]:
        lines.append(
            f"  {chunk['timestamp']} frames={chunk['frames']} grid_thw={chunk['grid_thw']} "
            f"tokens={chunk['tokens']}"
        )
    return "\n".join(lines)
