"""Small images and clips for the media tests, and their data URLs."""

from __future__ import annotations

import base64
import io

import av
from PIL import Image


def picture(color: tuple[int, int, int], size: tuple[int, int] = (224, 168)) -> Image.Image:
    """Two colours (so the patches differ): `color`, with a block of its complement."""
    image = Image.new("RGB", size, color)
    image.paste((255 - color[0], 255 - color[1], 40), (0, 0, size[0] // 2, size[1] // 3))
    return image


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (224, 168)) -> bytes:
    buffer = io.BytesIO()
    picture(color, size).save(buffer, format="PNG")
    return buffer.getvalue()


def mp4_bytes(num_frames: int = 8, fps: int = 4, size: tuple[int, int] = (64, 48)) -> bytes:
    """An MPEG-4 clip whose frames get redder (FFmpeg's own encoder, in every PyAV wheel)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (30 * i % 256, 20, 90)))
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
