"""Drawing the embedded model's visual world with Pillow: coloured shapes and rendered words.

Everything is seeded by the caller's `random.Random`, so a scene is a pure function of its
seed. Sizes are in pixels; shapes are drawn inside a square box (x, y, side) so placing them
without overlap is a rectangle test. Backgrounds are a light random grey-ish tint, so the
encoder cannot key on one exact background value.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (30, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
}
"""Colour names and the RGB they are painted with (far apart, so video compression keeps them
apart too)."""
SHAPES = ("circle", "square", "triangle", "diamond", "star")
"""Shape names, singular, as questions and answers spell them."""
WORDS = ("sun", "fish", "tree", "house", "moon", "cake", "boat", "lamp")
"""The words a word image may show."""
FONT_SIZES = (18, 26)
"""Smallest and largest font size of a rendered word."""


@dataclass(frozen=True, slots=True)
class Box:
    """A square region: top-left corner and side, in pixels."""

    x: float
    y: float
    side: float

    def overlaps(self, other: Box, gap: float) -> bool:
        """True when the two boxes come closer than `gap` pixels."""
        return not (self.x + self.side + gap <= other.x or other.x + other.side + gap <= self.x
                    or self.y + self.side + gap <= other.y or other.y + other.side + gap <= self.y)

    def moved(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.side)


def background(rng: random.Random) -> tuple[int, int, int]:
    """A light background tint."""
    return (rng.randint(232, 255), rng.randint(232, 255), rng.randint(232, 255))


def canvas(width: int, height: int, fill: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (width, height), fill)


def draw_shape(image: Image.Image, shape: str, box: Box, colour: str) -> None:
    """Paint one filled shape inside `box`."""
    draw = ImageDraw.Draw(image)
    rgb = COLOURS[colour]
    x0, y0, x1, y1 = box.x, box.y, box.x + box.side, box.y + box.side
    if shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=rgb)
    elif shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=rgb)
    else:
        draw.polygon(_outline(shape, box), fill=rgb)


def _outline(shape: str, box: Box) -> list[tuple[float, float]]:
    cx, cy, r = box.x + box.side / 2, box.y + box.side / 2, box.side / 2
    if shape == "triangle":
        return [(cx, box.y), (box.x + box.side, box.y + box.side), (box.x, box.y + box.side)]
    if shape == "diamond":
        return [(cx, box.y), (box.x + box.side, cy), (cx, box.y + box.side), (box.x, cy)]
    if shape == "star":
        return [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(math.pi * k / 5),
                 cy - (r if k % 2 == 0 else r * 0.45) * math.cos(math.pi * k / 5))
                for k in range(10)]
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


def place_boxes(rng: random.Random, width: int, height: int, sides: Sequence[float],
                *, gap: float = 4.0, tries: int = 1000) -> list[Box]:
    """Non-overlapping boxes of the given sides inside the canvas (rejection sampling)."""
    for _ in range(tries):
        boxes: list[Box] = []
        for side in sides:
            box = Box(rng.uniform(2, width - side - 2), rng.uniform(2, height - side - 2), side)
            if any(box.overlaps(other, gap) for other in boxes):
                break
            boxes.append(box)
        if len(boxes) == len(sides):
            return boxes
    raise ValueError(f"cannot place {len(sides)} shapes on a {width}x{height} canvas")


def draw_word(image: Image.Image, rng: random.Random, word: str) -> None:
    """Render `word` in a dark colour at a random size and position that fits."""
    draw = ImageDraw.Draw(image)
    for size in range(rng.randint(*FONT_SIZES), 7, -2):
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
        free_x, free_y = image.width - (right - left) - 4, image.height - (bottom - top) - 4
        if free_x >= 0 and free_y >= 0:
            xy = (rng.uniform(2, 2 + free_x) - left, rng.uniform(2, 2 + free_y) - top)
            ink = tuple(rng.randint(0, 70) for _ in range(3))
            draw.text(xy, word, font=font, fill=ink)
            return
    raise ValueError(f"the word {word!r} does not fit a {image.width}x{image.height} image")
