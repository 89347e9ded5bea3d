"""`openk2 embedded vision-tasks|vision-train|vision-eval` and the multimodal export, end to
end on the shipped text model (two training steps: the plumbing, not the accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.embedded.export import export_model
from openk2.embedded.vision.tasks import read_tasks
from openk2.model.vision.checkpoint import load_multimodal
from openk2.model.weights import load_model

_register_commands()
runner = CliRunner()


def test_vision_tasks_writes_heldout_image_and_video_chats(tmp_path: Path) -> None:
    result = runner.invoke(app, ["embedded", "vision-tasks", "--out", str(tmp_path),
                                 "--heldout", "3"])
    assert result.exit_code == 0, result.output
    assert [t.kind for t in read_tasks(tmp_path / "heldout_image.jsonl")] == ["image"] * 3
    assert [t.family for t in read_tasks(tmp_path / "heldout_video.jsonl")] == [
        "direction", "mover", "appear"]


def test_train_export_and_evaluate_a_vision_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["embedded", "vision-train", "--out-dir", str(run),
                                 "--steps", "2", "--batch-size", "2", "--eval-interval", "2",
                                 "--eval-tasks", "2"])
    assert result.exit_code == 0, result.output
    assert "val step 2:" in result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    config = json.loads((run / "final" / "config.json").read_text())
    assert config["model_type"] == "kimi_k25" and config["vision_config"]["vt_hidden_size"] == 128
    shipped = tmp_path / "shipped"
    sizes = export_model(run / "final", shipped)
    assert {"config.json", "model.safetensors", "tiktoken.model"} <= set(sizes)
    model = load_multimodal(shipped)
    assert model.vision_tower.patch_embed.proj.weight.dtype == torch.bfloat16
    assert model.media_pad_token_id == 7957
    assert load_model(shipped).config.hidden_size == 256  # the text loader still reads it
    result = runner.invoke(app, ["embedded", "vision-eval", "--model", str(shipped),
                                 "--heldout", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["tasks"] == 2 and set(summary["groups"]) == {
        "image", "image/colour", "video", "video/direction"}


def test_vision_eval_refuses_a_text_only_model() -> None:
    result = runner.invoke(app, ["embedded", "vision-eval", "--model", "embedded",
                                 "--heldout", "1"])
    assert result.exit_code != 0
    assert "vision_config" in result.output


def test_vision_eval_and_train_refuse_an_unknown_family() -> None:
    for command in (["vision-eval", "--model", "embedded-vl"], ["vision-train"]):
        result = runner.invoke(app, ["embedded", *command, "--families", "colour,nope"])
        assert result.exit_code != 0
        assert "unknown families ['nope']" in result.output
