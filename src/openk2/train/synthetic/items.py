"""Single-tool questions ("items"): the unit every synthetic task is built from.

An item is a question, the one tool call that answers it, and a rule that derives the answer from
the tool's result. The same item is asked directly by a user, or delegated by the orchestrator to
a sub-agent through `assign_task`. Answers are short and copied or computed from the tool result,
so a ~10-20M-parameter model can learn them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from openk2.train.synthetic.world import ToolWorld, evaluate

ItemKind = Literal["calc", "file", "kv"]

WORDS = (
    "alpha", "bravo", "cedar", "delta", "ember", "falcon", "garnet", "harbor", "indigo", "jasper",
    "kepler", "lumen", "maple", "nova", "onyx", "pepper", "quartz", "raven", "sierra", "tango",
    "umber", "violet", "willow", "xenon", "yarrow", "zephyr", "atlas", "birch", "comet", "dune",
)  # fmt: skip
DIRS = ("docs", "notes", "data", "config")
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
STATUSES = ("green", "amber", "red", "blue", "idle", "busy", "done", "open")
CITIES = ("paris", "tokyo", "lima", "oslo", "cairo", "quito", "seoul", "perth", "dakar", "rome")
KEY_PREFIXES = ("user", "order", "item", "team", "host", "task")
FIELDS = ("owner", "status", "port", "city", "level", "code")


@dataclass(frozen=True, slots=True)
class Item:
    """One question answered by exactly one tool call."""

    kind: ItemKind
    """'calc', 'file' or 'kv'."""
    label: str
    """Short name of the item in a list (the expression, path or key)."""
    question: str
    """The question as a user or the orchestrator asks it."""
    tool: str
    """The tool that answers it."""
    arguments: dict[str, str]
    """The tool call's arguments."""
    field: str = ""
    """For file items: which `field: value` line of the file holds the answer."""

    def answer(self, result: str) -> str:
        """The answer derived from the tool's result text."""
        if self.kind == "file":
            return field_value(result, self.field)
        return result.strip()


def field_value(content: str, field: str) -> str:
    """Value of the `field: value` line in a file's content ('' if absent)."""
    for line in content.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == field:
            return value.strip()
    return ""


def random_value(rng: random.Random, field: str) -> str:
    """A plausible value for one file field."""
    if field == "owner":
        return rng.choice(PEOPLE)
    if field == "status":
        return rng.choice(STATUSES)
    if field == "port":
        return str(rng.randint(1000, 9999))
    if field == "city":
        return rng.choice(CITIES)
    if field == "level":
        return str(rng.randint(1, 99))
    return f"{rng.choice(WORDS)[:3].upper()}{rng.randint(10, 99)}"


def calc_item(rng: random.Random) -> Item:
    """An integer expression with two or three operands (+, −, ×)."""
    n_ops = rng.choice((1, 1, 2))
    parts = [str(rng.randint(2, 99 if n_ops == 2 else 999))]
    for _ in range(n_ops):
        parts += [rng.choice("+-*"), str(rng.randint(2, 99))]
    expr = "".join(parts)
    evaluate(expr)  # validates the template
    return Item(
        kind="calc",
        label=expr,
        question=f"What is {expr}?",
        tool="calculator",
        arguments={"expression": expr},
    )


def file_item(rng: random.Random, world: ToolWorld, field: str | None = None) -> Item:
    """Create a file with three fields in `world` and ask for one of them."""
    path = _fresh(rng, world.files, lambda: f"{rng.choice(DIRS)}/{rng.choice(WORDS)}.txt")
    fields = rng.sample(FIELDS, 3) if field is None else [field, *rng.sample(_others(field), 2)]
    rng.shuffle(fields)
    world.files[path] = "\n".join(f"{f}: {random_value(rng, f)}" for f in fields)
    asked = field or rng.choice(fields)
    return Item(
        kind="file",
        label=path,
        question=f"What is the {asked} in {path}?",
        tool="read_file",
        arguments={"path": path},
        field=asked,
    )


def kv_item(rng: random.Random, world: ToolWorld) -> Item:
    """Store a value under a fresh key in `world` and ask for it."""
    key = _fresh(rng, world.kv, lambda: f"{rng.choice(KEY_PREFIXES)}_{rng.randint(1, 999)}")
    world.kv[key] = f"{rng.choice(WORDS)}-{rng.randint(1, 99)}"
    return Item(
        kind="kv",
        label=key,
        question=f"What is stored under {key}?",
        tool="kv_get",
        arguments={"key": key},
    )


def make_item(kind: ItemKind, rng: random.Random, world: ToolWorld) -> Item:
    """An item of `kind`, adding whatever it reads to `world`."""
    if kind == "calc":
        return calc_item(rng)
    if kind == "file":
        return file_item(rng, world)
    return kv_item(rng, world)


def add_distractors(rng: random.Random, world: ToolWorld, n: int) -> None:
    """Files and keys the task never asks about, so tools return from a populated world."""
    for _ in range(n):
        file_item(rng, world)
        kv_item(rng, world)


def _others(field: str) -> list[str]:
    return [f for f in FIELDS if f != field]


def _fresh(rng: random.Random, taken: dict[str, str], draw: Callable[[], str]) -> str:
    """Draw names until one is not in `taken` (the name spaces are far larger than a world)."""
    for _ in range(1000):
        name = draw()
        if name not in taken:
            return name
    raise RuntimeError("could not draw a fresh name; the world is too crowded")
