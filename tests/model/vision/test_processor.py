"""Image processor: the spec's token budgets, grid_thw, decoding and errors, HF pixel parity."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from openk2.model.vision.processor import (
    MediaError,
    ProcessorConfig,
    expand_media_pads,
    image_prompt,
    image_token_count,
    load_image,
    navit_size,
    pack_items,
    preprocess_image,
)

# long-context-vision.md §5.2: (width, height) -> LM tokens
SPEC_BUDGETS = {(640, 480): 414, (1280, 720): 1196, (1920, 1080): 2691, (3840, 2160): 4214}


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height))
    image.putdata(
        [((x * 7) % 256, (x * 3) % 256, 90, 255)[: len(mode)] for x in range(width * height)]
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("size", "tokens"), list(SPEC_BUDGETS.items()))
def test_spec_token_budgets(size: tuple[int, int], tokens: int) -> None:
    width, height = size
    assert image_token_count(height, width) == tokens


def test_resize_rule_on_spec_sizes() -> None:
    config = ProcessorConfig()
    assert navit_size(480, 640, config, 16384) == ((480, 640), (504, 644))  # never upscaled
    assert navit_size(2160, 3840, config, 16384) == ((1345, 2392), (1372, 2408))  # patch cap
    assert navit_size(1080, 1920, config, 4096) == ((672, 1196), (672, 1204))  # video frame
    assert navit_size(100, 9000, config, 16384)[0][1] == 512 * 14  # one-side cap


def test_preprocess_gives_grid_and_patches() -> None:
    item = preprocess_image(load_image(_png(640, 480)))
    assert item.grid_thw == (1, 36, 46)
    assert item.num_tokens == 414 == image_token_count(480, 640)
    assert item.pixels.shape == (36 * 46, 3, 14, 14)
    assert item.pixels.min() >= -1 and item.pixels.max() <= 1
    assert torch.all(item.pixels[-1] == 0)  # bottom-right patch is padding (zero after norm)


def test_large_image_is_downscaled_to_its_budget() -> None:
    item = preprocess_image(Image.new("RGB", (3840, 2160), (10, 20, 30)))
    assert item.grid_thw == (1, 98, 172)
    assert item.num_tokens == 4214


def test_sources_bytes_file_and_data_url_agree(tmp_path: Path) -> None:
    data = _png(30, 20)
    file = tmp_path / "a.png"
    file.write_bytes(data)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    images = [load_image(data), load_image(file), load_image(str(file)), load_image(url)]
    assert all(img.mode == "RGB" and img.size == (30, 20) for img in images)
    assert len({img.tobytes() for img in images}) == 1


def test_transparent_pixels_become_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    assert load_image(buffer.getvalue()).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    "source",
    [b"not an image", "data:image/png;base64,@@@", "data:text/plain;base64,aGk=",
     "data:image/png,abc", "/nonexistent/x.png"],
)  # fmt: skip
def test_bad_sources_raise_media_error(source: bytes | str) -> None:
    with pytest.raises(MediaError):
        load_image(source)


def test_expand_media_pads_and_pack() -> None:
    pad = 99
    assert expand_media_pads([1, pad, 2, pad], [3, 1], pad) == [1, pad, pad, pad, 2, pad]
    with pytest.raises(MediaError, match="2 media placeholders for 1"):
        expand_media_pads([pad, pad], [4], pad)
    items = [
        preprocess_image(Image.new("RGB", (28, 56))),
        preprocess_image(Image.new("RGB", (56, 28))),
    ]
    pixels, grids = pack_items(items)
    assert grids == [(1, 4, 2), (1, 2, 4)] and pixels.shape[0] == 16
    assert image_prompt() == "<|media_begin|>image<|media_content|><|media_pad|><|media_end|>"


def test_patch_layout_is_row_major_and_normalised() -> None:
    """Pixel (r, c) lands in patch (r // 14) * w + c // 14 at [:, r % 14, c % 14], as
    (v / 255 - 0.5) / 0.5; padding is 0. A 70x50 image is within the limits, so it is only
    padded (to 84x56) and no resampler is involved."""
    image = load_image(_png(70, 50))
    item = preprocess_image(image)
    assert item.grid_thw == (1, 4, 6)
    for r, c in [(0, 0), (13, 14), (20, 33), (49, 69)]:
        patch = item.pixels[(r // 14) * 6 + c // 14][:, r % 14, c % 14]
        expected = (torch.tensor(image.getpixel((c, r)), dtype=torch.float32) / 255 - 0.5) / 0.5
        assert torch.allclose(patch, expected, atol=1e-6)
    assert torch.all(item.pixels[(55 // 14) * 6 + 5][:, 55 % 14, 83 % 14] == 0)


def test_tiny_and_grey_images() -> None:
    buffer = io.BytesIO()
    Image.new("L", (5, 3), 128).save(buffer, format="PNG")
    image = load_image(buffer.getvalue())
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (128, 128, 128)
    item = preprocess_image(image)
    assert item.grid_thw == (1, 2, 2) and item.num_tokens == 1 == image_token_count(3, 5)
    assert item.pixels.shape == (4, 3, 14, 14)
