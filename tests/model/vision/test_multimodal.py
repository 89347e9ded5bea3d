"""The multimodal model: placeholder scatter, 1-D positions through the cache, errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from openk2.model import get_preset
from openk2.model.vision import build_multimodal, get_vision_preset
from openk2.model.vision.merge import scatter_media
from openk2.model.vision.processor import expand_media_pads, pack_items, preprocess_image

PAD = 500
TEXT = get_preset("debug")


def _model():  # noqa: ANN202
    model = build_multimodal(TEXT, get_vision_preset("debug"), seed=1).eval()
    model.media_pad_token_id = PAD
    return model


def _prompt() -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
    items = [
        preprocess_image(Image.new("RGB", (60, 40), (250, 0, 0))),
        preprocess_image(Image.new("RGB", (30, 90), (0, 0, 250))),
    ]
    ids = expand_media_pads([7, PAD, 8, 9, PAD, 10], [i.num_tokens for i in items], PAD)
    pixels, grids = pack_items(items)
    return torch.tensor([ids]), pixels, grids


def test_media_embeddings_land_on_the_pads_in_order() -> None:
    model = _model()
    ids, pixels, grids = _prompt()
    with torch.no_grad():
        embeds = model.input_embeddings(ids, pixels, grids)
        media = model.media_embeddings(pixels, grids)
    slots = (ids[0] == PAD).nonzero().flatten()
    assert torch.equal(embeds[0, slots], media)
    text = (ids[0] != PAD).nonzero().flatten()
    assert torch.equal(embeds[0, text], model.language_model.model.embed_tokens(ids[0, text]))


def test_prefill_with_media_then_decode_matches_one_full_forward() -> None:
    """Vision tokens take ordinary positions: cached decode after a media prefill equals the
    full forward over the whole sequence."""
    model = _model()
    ids, pixels, grids = _prompt()
    follow = torch.tensor([[11, 12]])
    with torch.no_grad():
        full = model(torch.cat([ids, follow], dim=1), pixels, grids)
        cache = model.new_cache(1, ids.shape[1] + 2)
        model(ids, pixels, grids, cache=cache)
        step1 = model(follow[:, :1], cache=cache)
        step2 = model(follow[:, 1:], cache=cache)
    assert (step1[0, -1] - full[0, -2]).abs().max().item() <= 1e-4
    assert (step2[0, -1] - full[0, -1]).abs().max().item() <= 1e-4


def test_placeholder_and_media_counts_must_agree() -> None:
    model = _model()
    ids, pixels, grids = _prompt()
    with pytest.raises(ValueError, match="placeholder tokens but the media give"):
        model(ids[:, 2:], pixels, grids)  # drops the first image's first pad
    with pytest.raises(ValueError, match="no pixels"):
        model(ids)
    with pytest.raises(ValueError, match="covers"):
        model(ids, pixels[:-1], grids)
    with pytest.raises(ValueError, match="text hidden_size"):
        build_multimodal(TEXT, get_vision_preset("debug", text_hidden_size=32))


def test_scatter_media_leaves_its_input_unchanged() -> None:
    embeds = torch.zeros(1, 3, 2)
    out = scatter_media(embeds, torch.tensor([[1, PAD, 2]]), torch.ones(1, 2), PAD)
    assert out[0, 1].tolist() == [1.0, 1.0] and embeds.abs().sum() == 0
