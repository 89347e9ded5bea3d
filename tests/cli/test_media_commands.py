"""`openk2 media-tokens` on a real PNG and a PyAV-encoded clip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from openk2.cli import _register_commands, app

sys.path.insert(0, str(Path(__file__).parents[1] / "model" / "vision"))
from clips import synthetic_clip  # noqa: E402

_register_commands()
runner = CliRunner()


def test_media_tokens_for_an_image_and_a_video(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (640, 480)).save(image)
    video = tmp_path / "b.mkv"
    video.write_bytes(synthetic_clip(25, 10))
    result = runner.invoke(app, ["media-tokens", "--json", str(image), str(video)])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert first == {"file": str(image), "kind": "image", "grid_thw": [1, 36, 46], "tokens": 414}
    assert [c["timestamp"] for c in second["chunks"]] == ["00:00:00.000", "00:00:02.400"]
    assert second["tokens"] == 12


def test_media_tokens_reports_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.png"
    bad.write_bytes(b"nope")
    result = runner.invoke(app, ["media-tokens", str(bad)])
    assert result.exit_code == 1
    assert "cannot decode the image" in result.output
