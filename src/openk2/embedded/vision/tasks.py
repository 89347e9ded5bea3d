"""Seeded visual questions for the embedded model: one image or one short clip, one question,
one exact one-word answer.

Image families: `colour` ("What colour is the triangle?"), `shape` ("Which shape is red?"),
`count` ("How many circles are there?", 1-4 with distractors), `position` ("Is the star on the
left or the right?"), `word` ("What word is written?"). Video families (8 frames at 2 fps,
so two 4-frame chunks): `direction` ("Which way does the circle move?"), `mover` ("Which shape
moves left?", the other shape stays or goes another way), `appear` ("What appears after the
square?", three shapes appear one after another).

Task `i` of a split is drawn from its own `random.Random(f"{split}:{seed}:{i}")`, so any task
can be regenerated alone and the train and held-out splits (different seeds) never share a
scene. Images are PNG (lossless); clips are H.264 MP4 encoded with PyAV, so the model learns
from the same decoded, chroma-subsampled frames a served video gives it.
"""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from PIL import Image

from openk2.embedded.vision.scenes import (
    COLOURS,
    SHAPES,
    WORDS,
    Box,
    background,
    canvas,
    draw_shape,
    draw_word,
    place_boxes,
)

IMAGE_FAMILIES = ("colour", "shape", "count", "position", "word")
VIDEO_FAMILIES = ("direction", "mover", "appear")
DIRECTIONS = ("left", "right", "up", "down")
STEP: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
IMAGE_SIDES = (70, 112)
"""Smallest and largest image side in pixels (navit keeps them: 9 to 16 LM tokens)."""
VIDEO_SIDES = (56, 84)
"""Smallest and largest clip side (even: H.264 4:2:0 needs it)."""
VIDEO_FRAMES, VIDEO_FPS = 8, 2
"""Frames per clip and their rate: the processor keeps all 8 (two 4-frame chunks)."""


@dataclass(frozen=True, slots=True)
class VisualTask:
    """One question about one image or clip, with its exact answer."""

    id: str
    family: str
    kind: str
    """'image' or 'video'."""
    question: str
    answer: str
    media: bytes
    """PNG bytes of the image or MP4 bytes of the clip."""

    def data_url(self) -> str:
        mime = "image/png" if self.kind == "image" else "video/mp4"
        return f"data:{mime};base64,{base64.b64encode(self.media).decode()}"

    def messages(self) -> list[dict[str, Any]]:
        """The user turn as an OpenAI chat client sends it (media part, then the question)."""
        part = ({"type": "image_url", "image_url": {"url": self.data_url()}}
                if self.kind == "image"
                else {"type": "video_url", "video_url": {"url": self.data_url()}})
        return [{"role": "user", "content": [part, {"type": "text", "text": self.question}]}]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "family": self.family, "kind": self.kind,
                "question": self.question, "answer": self.answer,
                "messages": self.messages()}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> VisualTask:
        url = row["messages"][0]["content"][0]
        url = (url.get("image_url") or url.get("video_url"))["url"]
        return cls(id=row["id"], family=row["family"], kind=row["kind"],
                   question=row["question"], answer=row["answer"],
                   media=base64.b64decode(url.partition(",")[2]))


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def mp4_bytes(frames: Sequence[Image.Image], fps: int = VIDEO_FPS) -> bytes:
    """H.264 (yuv420p, near-lossless CRF) MP4 of the frames."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode())
    return out.getvalue()


# Image families: each returns (question, answer, image).

def _distinct(rng: random.Random, pool: Sequence[str], k: int) -> list[str]:
    return rng.sample(list(pool), k)


def _scene(rng: random.Random, n: int, side: tuple[int, int] = (16, 26)) -> tuple[
        Image.Image, list[str], list[str], list[Box]]:
    width, height = rng.randint(*IMAGE_SIDES), rng.randint(*IMAGE_SIDES)
    shapes, colours = _distinct(rng, SHAPES, n), _distinct(rng, COLOURS, n)
    boxes = place_boxes(rng, width, height, [rng.uniform(*side) for _ in range(n)])
    image = canvas(width, height, background(rng))
    for shape, colour, box in zip(shapes, colours, boxes, strict=True):
        draw_shape(image, shape, box, colour)
    return image, shapes, colours, boxes


def colour_task(rng: random.Random) -> tuple[str, str, Image.Image]:
    image, shapes, colours, _ = _scene(rng, rng.randint(1, 3))
    k = rng.randrange(len(shapes))
    return f"What colour is the {shapes[k]}?", colours[k], image


def shape_task(rng: random.Random) -> tuple[str, str, Image.Image]:
    image, shapes, colours, _ = _scene(rng, rng.randint(1, 3))
    k = rng.randrange(len(shapes))
    return f"Which shape is {colours[k]}?", shapes[k], image


def count_task(rng: random.Random) -> tuple[str, str, Image.Image]:
    width, height = rng.randint(84, IMAGE_SIDES[1]), rng.randint(84, IMAGE_SIDES[1])
    target, count = rng.choice(SHAPES), rng.randint(1, 4)
    others = [rng.choice([s for s in SHAPES if s != target]) for _ in range(rng.randint(0, 2))]
    kinds = [target] * count + others
    boxes = place_boxes(rng, width, height, [rng.uniform(11, 17) for _ in kinds], gap=3)
    image = canvas(width, height, background(rng))
    for shape, box in zip(kinds, boxes, strict=True):
        draw_shape(image, shape, box, rng.choice(list(COLOURS)))
    return f"How many {target}s are there?", str(count), image


def position_task(rng: random.Random) -> tuple[str, str, Image.Image]:
    for _ in range(100):
        image, shapes, _, boxes = _scene(rng, rng.randint(1, 2))
        centre = (boxes[0].x + boxes[0].side / 2) / image.width
        if abs(centre - 0.5) >= 0.12:
            side = "left" if centre < 0.5 else "right"
            return f"Is the {shapes[0]} on the left or the right?", side, image
    raise RuntimeError("no off-centre placement found")


def word_task(rng: random.Random) -> tuple[str, str, Image.Image]:
    width, height = rng.randint(84, IMAGE_SIDES[1]), rng.randint(*IMAGE_SIDES)
    image, word = canvas(width, height, background(rng)), rng.choice(WORDS)
    draw_word(image, rng, word)
    return "What word is written?", word, image


# Video families: each returns (question, answer, frames).

def _clip_size(rng: random.Random) -> tuple[int, int]:
    return 2 * rng.randint(VIDEO_SIDES[0] // 2, VIDEO_SIDES[1] // 2), \
        2 * rng.randint(VIDEO_SIDES[0] // 2, VIDEO_SIDES[1] // 2)


def _track(rng: random.Random, width: int, height: int, side: float,
           direction: str | None) -> list[Box]:
    """Boxes of one shape over the clip: still (None) or a straight run in `direction`."""
    if direction is None:
        start = place_boxes(rng, width, height, [side])[0]
        return [start] * VIDEO_FRAMES
    dx, dy = STEP[direction]
    extent = width if dx else height
    travel = rng.uniform(0.35, 0.55) * (extent - side)
    x = rng.uniform(2, width - side - 2 - (travel if dx else 0))
    y = rng.uniform(2, height - side - 2 - (travel if dy else 0))
    if dx < 0:
        x += travel
    if dy < 0:
        y += travel
    start = Box(x, y, side)
    per = travel / (VIDEO_FRAMES - 1)
    return [start.moved(dx * per * f, dy * per * f) for f in range(VIDEO_FRAMES)]


def _render(width: int, height: int, fill: tuple[int, int, int],
            layers: Sequence[tuple[str, str, list[Box | None]]]) -> list[Image.Image]:
    frames = []
    for f in range(VIDEO_FRAMES):
        frame = canvas(width, height, fill)
        for shape, colour, boxes in layers:
            if boxes[f] is not None:
                draw_shape(frame, shape, boxes[f], colour)
        frames.append(frame)
    return frames


def direction_task(rng: random.Random) -> tuple[str, str, list[Image.Image]]:
    width, height = _clip_size(rng)
    shape, colour, direction = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(DIRECTIONS)
    boxes: list[Box | None] = list(_track(rng, width, height, rng.uniform(12, 18), direction))
    frames = _render(width, height, background(rng), [(shape, colour, boxes)])
    return f"Which way does the {shape} move?", direction, frames


def mover_task(rng: random.Random) -> tuple[str, str, list[Image.Image]]:
    width, height = _clip_size(rng)
    shapes, colours = _distinct(rng, SHAPES, 2), _distinct(rng, COLOURS, 2)
    direction = rng.choice(DIRECTIONS)
    other = rng.choice([None, *(d for d in DIRECTIONS if d != direction)])
    layers: list[tuple[str, str, list[Box | None]]] = []
    for shape, colour, way in zip(shapes, colours, (direction, other), strict=True):
        layers.append((shape, colour, list(_track(rng, width, height, rng.uniform(10, 16), way))))
    rng.shuffle(layers)
    frames = _render(width, height, background(rng), layers)
    return f"Which shape moves {direction}?", shapes[0], frames


def appear_task(rng: random.Random) -> tuple[str, str, list[Image.Image]]:
    width, height = _clip_size(rng)
    shapes, colours = _distinct(rng, SHAPES, 3), _distinct(rng, COLOURS, 3)
    boxes = place_boxes(rng, width, height, [rng.uniform(12, 16) for _ in range(3)])
    starts = (0, rng.randint(2, 3), rng.randint(5, 6))
    layers: list[tuple[str, str, list[Box | None]]] = [
        (shape, colour, [box if f >= start else None for f in range(VIDEO_FRAMES)])
        for shape, colour, box, start in zip(shapes, colours, boxes, starts, strict=True)]
    frames = _render(width, height, background(rng), layers)
    k = rng.randrange(2)
    return f"What appears after the {shapes[k]}?", shapes[k + 1], frames


IMAGE_MAKERS: dict[str, Callable[[random.Random], tuple[str, str, Image.Image]]] = {
    "colour": colour_task, "shape": shape_task, "count": count_task,
    "position": position_task, "word": word_task,
}
VIDEO_MAKERS: dict[str, Callable[[random.Random], tuple[str, str, list[Image.Image]]]] = {
    "direction": direction_task, "mover": mover_task, "appear": appear_task,
}
ANSWERS: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS), "shape": SHAPES, "count": ("1", "2", "3", "4"),
    "position": ("left", "right"), "word": WORDS, "direction": DIRECTIONS,
    "mover": SHAPES, "appear": SHAPES,
}
"""Every answer a family can have (the uniform-guess chance level is 1 / its size)."""


def make_task(family: str, *, seed: int, split: str, index: int) -> VisualTask:
    """Task `index` of `split` for one family (deterministic)."""
    rng = random.Random(f"{split}:{seed}:{index}:{family}")
    task_id = f"{split}-{seed}-{index}-{family}"
    if family in IMAGE_MAKERS:
        question, answer, image = IMAGE_MAKERS[family](rng)
        return VisualTask(task_id, family, "image", question, answer, png_bytes(image))
    if family in VIDEO_MAKERS:
        question, answer, frames = VIDEO_MAKERS[family](rng)
        return VisualTask(task_id, family, "video", question, answer, mp4_bytes(frames))
    raise ValueError(f"unknown visual family {family!r}; choose from "
                     f"{', '.join(IMAGE_FAMILIES + VIDEO_FAMILIES)}")


def generate(n: int, *, seed: int, split: str,
             families: Sequence[str] = IMAGE_FAMILIES + VIDEO_FAMILIES) -> Iterator[VisualTask]:
    """`n` tasks cycling over `families`."""
    for i in range(n):
        yield make_task(families[i % len(families)], seed=seed, split=split, index=i)


def write_tasks(path: Path, tasks: Iterator[VisualTask] | Sequence[VisualTask]) -> int:
    """JSON lines of the tasks (chat messages with data URLs, question, answer); row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        for task in tasks:
            out.write(json.dumps(task.to_json()) + "\n")
            rows += 1
    return rows


def read_tasks(path: Path) -> list[VisualTask]:
    with path.open(encoding="utf-8") as lines:
        return [VisualTask.from_json(json.loads(line)) for line in lines if line.strip()]
