"""Video input for MoonViT-3D: PyAV decoding, frame sampling, 4-frame chunks, timestamps.

Sampling (the checkpoint's `KimiK25VisionProcessor`): fps_s = min(sample_fps, native fps);
n = max(round(frames * fps_s / native fps), 1); indices = round(linspace(0, frames - 1, n));
chunks of `temporal_merge_kernel_size` (4) consecutive samples, the last one possibly
shorter. Each chunk is one encoder item (per-frame patch limit `in_patch_limit_each_frame`)
and one prompt block `HH:MM:SS.fff<|media_begin|>video<|media_content|><|media_pad|><|media_end|>`
stamped with its first frame's time (index / native fps, milliseconds truncated).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch
from PIL import Image

from openk2.model.vision.processor import (
    MEDIA_BEGIN,
    MEDIA_CONTENT,
    MEDIA_END,
    MEDIA_PAD,
    MediaError,
    MediaItem,
    ProcessorConfig,
    frames_to_item,
)

VIDEO_PLACEHOLDER = "<|kimi_k25_video_placeholder|>"
"""What the chat template emits for a video; `video_prompt` gives its replacement."""
MAX_VIDEO_FRAMES = 1_000_000
"""Refuse containers claiming more frames than this (about 9 hours at 30 fps)."""


@dataclass(kw_only=True, slots=True, frozen=True)
class VideoChunk:
    """One 4-frame (or shorter, last) chunk of a sampled video."""

    item: MediaItem
    """The encoder input (t = frames in the chunk)."""
    frame_indices: tuple[int, ...]
    """Source frame numbers of its frames."""
    timestamp: str
    """HH:MM:SS.fff of its first frame."""

    def prompt(self) -> str:
        """This chunk's chat-text block (one pad, expanded later to `item.num_tokens`)."""
        return f"{self.timestamp}{MEDIA_BEGIN}video{MEDIA_CONTENT}{MEDIA_PAD}{MEDIA_END}"


def sample_indices(num_frames: int, native_fps: float, sample_fps: float) -> list[int]:
    """Source frame indices to keep: round(linspace(0, num_frames - 1, n)) (half to even)."""
    if num_frames < 1 or native_fps <= 0:
        raise MediaError(
            f"a video needs frames and a positive fps, got {num_frames} @ {native_fps}"
        )
    fps = min(sample_fps, native_fps)
    count = max(round(num_frames * fps / native_fps), 1)
    points = torch.linspace(0, num_frames - 1, count, dtype=torch.float64).round()
    return [int(p) for p in points]


def timestamp(frame_index: int, native_fps: Fraction) -> str:
    """HH:MM:SS.fff of a frame (exact rational time; milliseconds truncated)."""
    millis = int(Fraction(frame_index) / native_fps * 1000)
    seconds, ms = divmod(millis, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    return f"{hours:02d}:{mins:02d}:{sec:02d}.{ms:03d}"


def video_chunks(
    source: bytes | str | os.PathLike[str],
    config: ProcessorConfig | None = None,
    *,
    max_frames: int | None = None,
) -> list[VideoChunk]:
    """Decode a video (bytes or path), sample it and cut it into encoder-ready chunks;
    `max_frames` refuses, before decoding any frame, a video that samples more frames."""
    config = config or ProcessorConfig()
    with _open(source) as container:
        stream = _video_stream(container)
        fps = _native_fps(stream)
        num_frames = stream.frames or _count_frames(source)
        if num_frames > MAX_VIDEO_FRAMES:
            raise MediaError(f"the video has {num_frames} frames, more than {MAX_VIDEO_FRAMES}")
        indices = sample_indices(num_frames, float(fps), config.sample_fps)
        if max_frames is not None and len(indices) > max_frames:
            raise MediaError(
                f"the video samples {len(indices)} frames, more than the {max_frames} "
                "allowed; send a shorter clip"
            )
        frames = _decode_frames(container, stream, set(indices))
    kept = [i for i in indices if i in frames]  # a container may hold fewer frames than claimed
    if not kept:
        raise MediaError("the video has no decodable frames")
    return list(_chunks(kept, frames, fps, config))


def video_prompt(chunks: Sequence[VideoChunk]) -> str:
    """The text that replaces one `VIDEO_PLACEHOLDER`: the chunks' blocks, back to back."""
    return "".join(chunk.prompt() for chunk in chunks)


def _chunks(
    indices: Sequence[int], frames: dict[int, Image.Image], fps: Fraction, config: ProcessorConfig
) -> Iterator[VideoChunk]:
    size = config.temporal_merge_kernel_size
    for start in range(0, len(indices), size):
        group = tuple(indices[start : start + size])
        item = frames_to_item([frames[i] for i in group], config, config.in_patch_limit_each_frame)
        yield VideoChunk(item=item, frame_indices=group, timestamp=timestamp(group[0], fps))


def _open(source: bytes | str | os.PathLike[str]) -> av.container.InputContainer:
    try:
        if isinstance(source, bytes):
            return av.open(io.BytesIO(source))
        path = Path(source)
        if not path.is_file():
            raise MediaError(f"video file not found: {path}")
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise MediaError(f"cannot open the video: {exc}") from None


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError("the file has no video stream")
    return container.streams.video[0]


def _native_fps(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    if not rate or rate <= 0:
        raise MediaError("the video stream has no frame rate")
    return Fraction(rate)


def _count_frames(source: bytes | str | os.PathLike[str]) -> int:
    """Frames of a container whose header does not say (decodes once, keeps nothing)."""
    with _open(source) as container:
        return sum(1 for _ in container.decode(_video_stream(container)))


def _decode_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, wanted: set[int]
) -> dict[int, Image.Image]:
    """The wanted frames (by decode order number) as RGB images; stops after the last one."""
    frames: dict[int, Image.Image] = {}
    last = max(wanted)
    try:
        for number, frame in enumerate(container.decode(stream)):
            if number in wanted:
                frames[number] = frame.to_image()
            if number >= last:
                break
    except av.FFmpegError as exc:
        raise MediaError(f"cannot decode the video: {exc}") from None
    return frames
