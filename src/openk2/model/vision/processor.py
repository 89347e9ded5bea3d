"""Image preprocessing for MoonViT-3D (`MoonViTMediaProcessor`): Pillow -> patches + grid_thw.

Rule (navit resize): scale = min(1, sqrt(limit / (floor(H/ps) floor(W/ps))), side*ps/H, side*ps/W)
(never upscale), bicubic resize to (int(H scale), int(W scale)), zero-pad bottom/right to
multiples of ps*merge (28), rescale 1/255 and normalise with mean = std = 0.5, cut row-major
ps x ps patches. An image becomes (h/2)(w/2) LM tokens; `limit` is `in_patch_limit` for
images and `in_patch_limit_each_frame` for video frames.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

MEDIA_BEGIN, MEDIA_CONTENT, MEDIA_END = "<|media_begin|>", "<|media_content|>", "<|media_end|>"
MEDIA_PAD = "<|media_pad|>"
MAX_IMAGE_PIXELS = 64_000_000
"""Decoded images above this many pixels are refused (decompression-bomb guard)."""


class MediaError(ValueError):
    """A media input that cannot be decoded or is out of bounds (a client error)."""


@dataclass(kw_only=True, slots=True, frozen=True)
class ProcessorConfig:
    """`preprocessor_config.json` of K2.5 / K2.6 (`MoonViTMediaProcessor`)."""

    patch_size: int = 14
    """Side of a pixel patch."""
    in_patch_limit: int = 16384
    """Most patches one image may have after resizing."""
    patch_limit_on_one_side: int = 512
    """Most patches along either side."""
    in_patch_limit_each_frame: int = 4096
    """Most patches one video frame may have."""
    merge_kernel_size: int = 2
    """Spatial merge (pads to multiples of patch_size * merge_kernel_size)."""
    temporal_merge_kernel_size: int = 4
    """Frames per video chunk (pooled into one set of tokens)."""
    sample_fps: float = 2.0
    """Video frames sampled per second (at most the native rate)."""
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel mean after rescaling to [0, 1]."""
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel std after rescaling to [0, 1]."""


@dataclass(kw_only=True, slots=True, frozen=True)
class MediaItem:
    """One encoder input: an image or a video chunk."""

    pixels: torch.Tensor
    """[t*h*w, 3, ps, ps] float32 normalised patches, frame-major then row-major."""
    grid_thw: tuple[int, int, int]
    """(frames, patch rows, patch columns)."""
    num_tokens: int
    """LM tokens this item becomes: (h/2)(w/2)."""


def navit_size(
    height: int, width: int, config: ProcessorConfig, patch_limit: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((resized H, W), (padded H, W)) for an image of `height` x `width` pixels."""
    ps, side = config.patch_size, config.patch_limit_on_one_side
    patches = max(1, height // ps) * max(1, width // ps)
    scale = min(1.0, math.sqrt(patch_limit / patches), side * ps / height, side * ps / width)
    new_h = min(max(1, int(height * scale)), side * ps)
    new_w = min(max(1, int(width * scale)), side * ps)
    factor = ps * config.merge_kernel_size
    return (new_h, new_w), (-(-new_h // factor) * factor, -(-new_w // factor) * factor)


def image_token_count(height: int, width: int, config: ProcessorConfig | None = None) -> int:
    """LM tokens of an image of `height` x `width` pixels (exact, without decoding it)."""
    config = config or ProcessorConfig()
    _, (pad_h, pad_w) = navit_size(height, width, config, config.in_patch_limit)
    unit = config.patch_size * config.merge_kernel_size
    return (pad_h // unit) * (pad_w // unit)


def load_image(source: bytes | str | os.PathLike[str]) -> Image.Image:
    """An RGB Pillow image from raw bytes, a `data:image/...;base64,` URL or a file path."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str) and source.startswith("data:"):
        data = _data_url_bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise MediaError(f"image file not found: {path}")
        data = path.read_bytes()
    return _decode(data)


def _data_url_bytes(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64") or not header[5:].startswith("image/"):
        raise MediaError("an image data URL must look like data:image/<type>;base64,<data>")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError(f"the image data URL is not valid base64: {exc}") from None


def _decode(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise MediaError(f"image of {image.width}x{image.height} pixels is too large")
            return _to_rgb(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise MediaError(f"cannot decode the image: {exc}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB; transparent pixels become white (as over a page) rather than black."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(page, rgba).convert("RGB")
    return image.convert("RGB")


def preprocess_image(image: Image.Image, config: ProcessorConfig | None = None) -> MediaItem:
    """An image as one encoder input (t = 1)."""
    config = config or ProcessorConfig()
    return frames_to_item([image], config, config.in_patch_limit)


def frames_to_item(
    frames: Sequence[Image.Image], config: ProcessorConfig, patch_limit: int
) -> MediaItem:
    """Frames of one size (an image, or a video chunk) as one encoder input."""
    sizes = {frame.size for frame in frames}
    if len(sizes) != 1:
        raise MediaError(f"the frames of one item must share one size, got {sorted(sizes)}")
    tensors = [_frame_tensor(frame, config, patch_limit) for frame in frames]
    ps = config.patch_size
    _, height, width = tensors[0].shape
    grid = (len(frames), height // ps, width // ps)
    pixels = torch.cat([_patchify(frame, ps) for frame in tensors])
    unit = config.merge_kernel_size
    return MediaItem(pixels=pixels, grid_thw=grid, num_tokens=(grid[1] // unit) * (grid[2] // unit))


def _frame_tensor(frame: Image.Image, config: ProcessorConfig, patch_limit: int) -> torch.Tensor:
    """[3, padded H, padded W] normalised float32 (padding is zero after normalisation)."""
    rgb = _to_rgb(frame)
    (new_h, new_w), (pad_h, pad_w) = navit_size(rgb.height, rgb.width, config, patch_limit)
    if (new_w, new_h) != rgb.size:
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BICUBIC)
    raw = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    hwc = raw.view(new_h, new_w, 3).float() / 255.0
    mean, std = torch.tensor(config.image_mean), torch.tensor(config.image_std)
    chw = ((hwc - mean) / std).permute(2, 0, 1)
    out = torch.zeros(3, pad_h, pad_w)
    out[:, :new_h, :new_w] = chw
    return out


def _patchify(chw: torch.Tensor, ps: int) -> torch.Tensor:
    """[3, H, W] -> [(H/ps)(W/ps), 3, ps, ps], row-major over patches."""
    _, height, width = chw.shape
    grid = chw.view(3, height // ps, ps, width // ps, ps).permute(1, 3, 0, 2, 4)
    return grid.reshape(-1, 3, ps, ps)


def image_prompt() -> str:
    """The chat-text block of one image (its single pad is expanded by `expand_media_pads`)."""
    return f"{MEDIA_BEGIN}image{MEDIA_CONTENT}{MEDIA_PAD}{MEDIA_END}"


def expand_media_pads(ids: Sequence[int], counts: Sequence[int], pad_id: int) -> list[int]:
    """Token ids with the k-th single `<|media_pad|>` repeated `counts[k]` times."""
    found = sum(1 for token in ids if token == pad_id)
    if found != len(counts):
        raise MediaError(f"the prompt has {found} media placeholders for {len(counts)} media items")
    out: list[int] = []
    remaining = iter(counts)
    for token in ids:
        out.extend([pad_id] * next(remaining) if token == pad_id else [token])
    return out


def pack_items(items: Sequence[MediaItem]) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """(pixels of all items concatenated, their grid_thw list): the tower's inputs."""
    if not items:
        raise MediaError("no media items to pack")
    return torch.cat([item.pixels for item in items]), [item.grid_thw for item in items]
