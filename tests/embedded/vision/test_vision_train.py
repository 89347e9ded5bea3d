"""The vision run's optimizer: AdamW for every part (the Muon recipe stayed at chance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openk2.embedded import resolve_model
from openk2.embedded.vision.train import (
    EMBEDDED_VISION,
    VisionTrainSpec,
    build_vision_model,
    optimizer_for,
)


@pytest.fixture(scope="module")
def spec() -> VisionTrainSpec:
    return VisionTrainSpec(text_model=resolve_model("embedded"), out_dir=Path("unused"))


def test_every_part_trains_on_adamw_at_its_own_lr(spec: VisionTrainSpec) -> None:
    model = build_vision_model(spec.text_model, EMBEDDED_VISION, 0, 7957, train_text=True)
    groups = optimizer_for(model, spec).param_groups
    assert groups and not any(g["use_muon"] for g in groups)
    tower = {id(p) for p in model.vision_tower.parameters()}
    text = {id(p) for p in model.language_model.parameters()}
    for group in groups:
        ids = {id(p) for p in group["params"]}
        expected = spec.lr if ids <= tower else spec.text_lr if ids <= text else spec.projector_lr
        assert group["lr"] == expected


def test_a_frozen_text_model_has_no_optimizer_group(spec: VisionTrainSpec) -> None:
    model = build_vision_model(spec.text_model, EMBEDDED_VISION, 0, 7957, train_text=False)
    text = {id(p) for p in model.language_model.parameters()}
    params = [p for g in optimizer_for(model, spec).param_groups for p in g["params"]]
    assert params and not any(id(p) in text for p in params)
