"""A transformers 5.23 Kimi-K2.5 checkpoint loads into openk2 with the same numbers (images)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).parent))
from hf_vision_oracle import PAD_ID, saved_hf_model  # noqa: E402

from openk2.model.vision.checkpoint import load_multimodal  # noqa: E402

TOLERANCE = 1e-4
# (t, h, w) in patches: a non-square grid, an upscale, a downscale and a wide grid packed into
# one call; and the pos-emb grid's own size (6x6: used without resizing).
GRIDS = [(1, 6, 4), (1, 10, 8), (1, 2, 2), (1, 4, 12)]


def _pixels(grids: list[tuple[int, int, int]]) -> torch.Tensor:
    count = sum(t * h * w for t, h, w in grids)
    return torch.randn(count, 3, 14, 14, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module", params=["original_format", "transformers_names"])
def models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """transformers' default save (hub names) and `save_original_format=False` (its own names,
    q/k/v split and permuted to rotate-half)."""
    path = tmp_path_factory.mktemp("k25")
    hf_model = saved_hf_model(path)
    if request.param == "transformers_names":
        hf_model.save_pretrained(path, save_original_format=False)
        with safe_open(path / "model.safetensors", "pt") as f:
            assert "model.vision_tower.layers.0.attn.q_proj.weight" in set(f.keys())
    return hf_model, load_multimodal(path)


@pytest.mark.parametrize("grids", [GRIDS, [(1, 6, 6)]])
def test_projector_output_matches_transformers(models, grids) -> None:  # noqa: ANN001
    hf_model, model = models
    pixels = _pixels(grids)
    with torch.no_grad():
        expected = torch.cat(hf_model.get_image_features(pixels, torch.tensor(grids)).pooler_output)
        actual = model.media_embeddings(pixels, grids)
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max().item() <= TOLERANCE


def test_image_prompt_logits_match_transformers(models) -> None:  # noqa: ANN001
    hf_model, model = models
    grids = [(1, 4, 6), (1, 2, 4)]
    slots = [6, 2]  # (h/2)(w/2) per image
    text = torch.randint(0, 400, (20,), generator=torch.Generator().manual_seed(1))
    ids = torch.cat([text[:5], torch.full((slots[0],), PAD_ID), text[5:12],
                     torch.full((slots[1],), PAD_ID), text[12:]])[None]  # fmt: skip
    pixels = _pixels(grids)
    with torch.no_grad():
        expected = hf_model(input_ids=ids, pixel_values=pixels, image_grid_thw=torch.tensor(grids))
        actual = model(ids, pixels, grids)
    assert (actual - expected.logits).abs().max().item() <= TOLERANCE
