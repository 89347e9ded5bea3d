"""Video sampling on synthetic PyAV clips whose frames carry their own index as a grey level."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from clips import LEVEL_STEP, synthetic_clip  # noqa: E402

from openk2.model.vision.processor import MediaError, ProcessorConfig
from openk2.model.vision.video import sample_indices, timestamp, video_chunks, video_prompt


def _frame_level(pixels: torch.Tensor) -> float:
    """Grey level (0..255) of a flat frame from its first normalised patch."""
    return float((pixels[0].mean() * 0.5 + 0.5) * 255)


def test_sample_indices_follow_the_spec_formula() -> None:
    assert sample_indices(25, 10.0, 2.0) == [0, 6, 12, 18, 24]  # n = round(25 * 2 / 10) = 5
    assert sample_indices(10, 30.0, 2.0) == [0]  # n = max(round(0.67), 1) = 1
    assert sample_indices(10, 4.0, 2.0) == [0, 2, 4, 7, 9]  # linspace 0, 2.25, 4.5, 6.75, 9
    assert sample_indices(5, 1.0, 2.0) == [0, 1, 2, 3, 4]  # min(2 fps, native 1 fps)
    with pytest.raises(MediaError):
        sample_indices(0, 30.0, 2.0)


def test_timestamps_are_hh_mm_ss_fff_truncated() -> None:
    assert timestamp(0, Fraction(10)) == "00:00:00.000"
    assert timestamp(24, Fraction(10)) == "00:00:02.400"
    assert timestamp(7, Fraction(30)) == "00:00:00.233"
    assert timestamp(30000 * 3725 + 1, Fraction(30000)) == "01:02:05.000"
    assert timestamp(1001, Fraction(30000, 1001)) == "00:00:33.400"


def test_clip_gives_spec_indices_chunks_and_timestamps(tmp_path: Path) -> None:
    data = synthetic_clip(25, 10)
    path = tmp_path / "bars.mkv"
    path.write_bytes(data)
    for source in (data, path):
        chunks = video_chunks(source)
        assert [c.frame_indices for c in chunks] == [(0, 6, 12, 18), (24,)]
        assert [c.timestamp for c in chunks] == ["00:00:00.000", "00:00:02.400"]
    first = chunks[0].item
    assert first.grid_thw == (4, 4, 6) and first.num_tokens == 6  # 48x64 -> 56x84 padded
    assert chunks[1].item.grid_thw == (1, 4, 6)
    per_frame = first.pixels.view(4, 24, 3, 14, 14)
    levels = [_frame_level(frame) for frame in per_frame]
    assert levels == pytest.approx([LEVEL_STEP * i for i in (0, 6, 12, 18)], abs=2)
    assert video_prompt(chunks) == (
        "00:00:00.000<|media_begin|>video<|media_content|><|media_pad|><|media_end|>"
        "00:00:02.400<|media_begin|>video<|media_content|><|media_pad|><|media_end|>"
    )


def test_frames_use_the_per_frame_patch_limit() -> None:
    config = ProcessorConfig(in_patch_limit_each_frame=16)
    chunk = video_chunks(synthetic_clip(2, 2, size=(140, 112)), config)[0]
    # 112x140 has 8x10 patches; scale sqrt(16/80) -> 50x62 pixels, padded to 56x84
    assert chunk.item.grid_thw == (2, 4, 6)
    assert video_chunks(synthetic_clip(2, 2, size=(140, 112)))[0].item.grid_thw == (2, 8, 10)


def test_bad_video_raises_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        video_chunks(b"not a video at all")
    with pytest.raises(MediaError, match="not found"):
        video_chunks(tmp_path / "missing.mp4")
