"""`openk2 inspect` counts the vision tower and projector of K2.5 / K2.6 models."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model import get_preset
from openk2.model.vision import build_multimodal, get_vision_preset
from openk2.model.vision.checkpoint import save_multimodal

_register_commands()
runner = CliRunner()


def test_inspect_kimi_k26_preset_counts_the_400m_vision_tower() -> None:
    result = runner.invoke(app, ["inspect", "--preset", "kimi-k2.6"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "vision tower (MoonViT-3D) │ 416.87M" in result.output
    assert "mm projector              │  54.28M" in result.output


def test_inspect_multimodal_checkpoint(tmp_path: Path) -> None:
    vision = get_vision_preset("debug", vt_num_hidden_layers=1)
    save_multimodal(build_multimodal(get_preset("debug"), vision, seed=0), tmp_path)
    result = runner.invoke(app, ["inspect", "--model", str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "vision tower" in result.output and "mm projector" in result.output
