"""Grading and the statistics of the visual accuracy report."""

from __future__ import annotations

import pytest

from openk2.embedded.vision.evaluate import (
    BLIND_CHANCE,
    Answered,
    is_correct,
    majority_baseline,
    summarize,
    visible_answer,
    wilson,
)
from openk2.embedded.vision.tasks import ANSWERS, make_task


def test_answers_are_graded_exactly_up_to_case_and_a_final_period() -> None:
    assert is_correct(" Red. ", "red") and is_correct("left", "left")
    assert not is_correct("red circle", "red") and not is_correct("", "red")
    assert visible_answer("</think>blue") == "blue" and visible_answer(" 3 ") == "3"


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == 1.0


def test_blind_chance_never_beats_uniform_guessing_by_more_than_the_question_allows() -> None:
    for family, p in BLIND_CHANCE.items():
        assert 1 / len(ANSWERS[family]) <= p <= 0.5


def test_summary_reports_accuracy_interval_and_chance_per_family_and_kind() -> None:
    tasks = [make_task("position", seed=0, split="x", index=i) for i in range(4)]
    graded = [Answered(t.id, t.family, t.kind, t.answer, t.answer if i < 3 else "?", i < 3)
              for i, t in enumerate(tasks)]
    group = summarize(graded, tasks, 0.5)["groups"]["image/position"]
    assert group["n"] == 4 and group["accuracy"] == 0.75
    assert group["chance"] == 0.5 and group["blind"] == 0.5
    assert group["ci95"][0] < 0.75 < group["ci95"][1]
    assert group["majority"] == majority_baseline(tasks) >= 0.5


def test_the_vision_sibling_name_resolves_or_says_how_to_build_it(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openk2.embedded as embedded

    missing = tmp_path / "openk2-embedded-vl"  # type: ignore[operator]
    monkeypatch.setattr(embedded, "vision_model_dir", lambda: missing)
    with pytest.raises(FileNotFoundError, match="make embedded-vision"):
        embedded.resolve_model("embedded-vl")
    missing.mkdir()
    (missing / "model.safetensors").write_bytes(b"")
    assert embedded.resolve_model("embedded-vl") == str(missing)
    assert embedded.resolve_model("some/dir") == "some/dir"
