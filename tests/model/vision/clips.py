"""Synthetic PyAV clips whose frames carry their own index as a grey level (lossless)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
from PIL import Image

LEVEL_STEP = 9
"""Grey level per frame index: frame i is a flat image of value 9 * i (lossless ffv1)."""


def synthetic_clip(num_frames: int, fps: int | Fraction, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv444p"
        for i in range(num_frames):
            image = Image.new("RGB", size, (LEVEL_STEP * i % 256,) * 3)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
