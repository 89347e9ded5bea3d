"""The seeded visual world: deterministic tasks, answers that match the pictures, media that
the real processor decodes (PNG images, H.264 clips in two 4-frame chunks)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from openk2.embedded.vision.scenes import COLOURS, SHAPES, Box, canvas, draw_shape, place_boxes
from openk2.embedded.vision.tasks import (
    ANSWERS,
    IMAGE_FAMILIES,
    VIDEO_FAMILIES,
    VisualTask,
    generate,
    make_task,
    read_tasks,
    write_tasks,
)
from openk2.model.vision.processor import load_image, preprocess_image
from openk2.model.vision.video import video_chunks


def test_a_task_is_a_pure_function_of_family_seed_split_and_index() -> None:
    a = make_task("colour", seed=3, split="train", index=7)
    assert a == make_task("colour", seed=3, split="train", index=7)
    assert a.media != make_task("colour", seed=3, split="heldout", index=7).media
    assert a.media != make_task("colour", seed=4, split="train", index=7).media


@pytest.mark.parametrize("family", IMAGE_FAMILIES + VIDEO_FAMILIES)
def test_every_family_answers_from_its_answer_set(family: str) -> None:
    for index in range(6):
        task = make_task(family, seed=0, split="t", index=index)
        assert task.answer in ANSWERS[family], (task.question, task.answer)
        assert task.kind == ("image" if family in IMAGE_FAMILIES else "video")


def test_images_are_png_the_processor_reads() -> None:
    task = make_task("word", seed=0, split="t", index=0)
    item = preprocess_image(load_image(task.data_url()))
    t, h, w = item.grid_thw
    assert t == 1 and 9 <= item.num_tokens == (h // 2) * (w // 2) <= 16


def test_clips_decode_to_two_timestamped_four_frame_chunks() -> None:
    chunks = video_chunks(make_task("direction", seed=0, split="t", index=1).media)
    assert [c.frame_indices for c in chunks] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert [c.timestamp for c in chunks] == ["00:00:00.000", "00:00:02.000"]


def test_the_colour_answer_is_the_colour_painted_under_the_shape() -> None:
    image = canvas(60, 60, (255, 255, 255))
    for shape in SHAPES:
        draw_shape(image, shape, Box(10, 10, 40), "purple")
        assert image.getpixel((30, 32)) == COLOURS["purple"], shape


def test_placed_boxes_never_overlap() -> None:
    import random

    boxes = place_boxes(random.Random(0), 100, 100, [20.0] * 6, gap=3)
    for i, a in enumerate(boxes):
        assert all(not a.overlaps(b, 3) for b in boxes[i + 1:])
        assert a.x >= 0 and a.x + a.side <= 100 and a.y >= 0 and a.y + a.side <= 100


def test_a_crowded_canvas_is_refused_with_a_clear_error() -> None:
    import random

    with pytest.raises(ValueError, match="cannot place 9 shapes"):
        place_boxes(random.Random(0), 30, 30, [20.0] * 9, tries=5)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown visual family"):
        make_task("smell", seed=0, split="t", index=0)


def test_tasks_round_trip_through_jsonl_as_openai_chat_messages(tmp_path: Path) -> None:
    tasks = list(generate(4, seed=2, split="heldout", families=("count", "mover")))
    assert write_tasks(tmp_path / "t.jsonl", tasks) == 4
    assert read_tasks(tmp_path / "t.jsonl") == tasks
    parts = tasks[1].messages()[0]["content"]
    assert parts[0]["type"] == "video_url" and parts[0]["video_url"]["url"].startswith(
        "data:video/mp4;base64,")
    assert parts[1] == {"type": "text", "text": tasks[1].question}
    assert Image.open(io.BytesIO(tasks[0].media)).format == "PNG"
    assert isinstance(VisualTask.from_json(tasks[0].to_json()), VisualTask)
