"""Tools and seeded requests shared by the `functions` and `tool-calls` suites.

Each task family knows its tool's JSON schema and how to turn random values into a user
request and the reference call (`{"name", "args": {param: [acceptable values]}}`, BFCL's
shape: a param whose list holds `""` may be omitted).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

CITIES = ("Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Cairo", "Hanoi", "Quito", "Perth")
CURRENCIES = ("USD", "EUR", "JPY", "GBP", "NGN", "PEN")


def _tool(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict:
    params = {"type": "object", "properties": props, "required": required,
              "additionalProperties": False}
    return {"type": "function",
            "function": {"name": name, "description": description, "parameters": params}}


TOOLS: dict[str, dict[str, Any]] = {
    "get_weather": _tool(
        "get_weather", "Current weather for a city.",
        {"city": {"type": "string", "description": "City name"},
         "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
    "convert_currency": _tool(
        "convert_currency", "Convert an amount between two currencies.",
        {"amount": {"type": "number"}, "source": {"type": "string", "enum": list(CURRENCIES)},
         "target": {"type": "string", "enum": list(CURRENCIES)}},
        ["amount", "source", "target"]),
    "book_table": _tool(
        "book_table", "Book a restaurant table.",
        {"restaurant": {"type": "string"}, "people": {"type": "integer", "minimum": 1},
         "time": {"type": "string", "description": "24h time HH:MM"}},
        ["restaurant", "people", "time"]),
    "rectangle_area": _tool(
        "rectangle_area", "Area of a rectangle.",
        {"width": {"type": "number"}, "height": {"type": "number"}}, ["width", "height"]),
}

Reference = dict[str, Any]
Family = Callable[[random.Random], tuple[str, Reference]]


def weather(rng: random.Random) -> tuple[str, Reference]:
    city = rng.choice(CITIES)
    if rng.random() < 0.5:
        return (f"What is the weather in {city}?",
                {"name": "get_weather", "args": {"city": [city], "unit": ["", "celsius",
                                                                           "fahrenheit"]}})
    unit = rng.choice(("celsius", "fahrenheit"))
    return (f"What is the weather in {city} in {unit}?",
            {"name": "get_weather", "args": {"city": [city], "unit": [unit]}})


def currency(rng: random.Random) -> tuple[str, Reference]:
    amount = rng.randint(2, 900)
    source, target = rng.sample(CURRENCIES, 2)
    return (f"Convert {amount} {source} to {target}.",
            {"name": "convert_currency",
             "args": {"amount": [amount], "source": [source], "target": [target]}})


def booking(rng: random.Random) -> tuple[str, Reference]:
    place = rng.choice(("Chez Lou", "Sakura", "The Mill", "Casa Verde"))
    people, hour = rng.randint(1, 8), rng.randint(11, 22)
    return (f"Book a table at {place} for {people} people at {hour}:00.",
            {"name": "book_table", "args": {"restaurant": [place], "people": [people],
                                            "time": [f"{hour}:00", f"{hour:02d}:00"]}})


def area(rng: random.Random) -> tuple[str, Reference]:
    w, h = rng.randint(1, 40), rng.randint(1, 40)
    return (f"What is the area of a {w} by {h} rectangle? Use the tool.",
            {"name": "rectangle_area", "args": {"width": [w], "height": [h]}})


FAMILIES: dict[str, Family] = {"get_weather": weather, "convert_currency": currency,
                               "book_table": booking, "rectangle_area": area}

IRRELEVANT = (
    "Write a haiku about autumn.", "Who wrote Hamlet?", "Say hello in French.",
    "What is the capital of Canada?", "Tell me a short joke about cats.",
)
"""Questions none of the tools can answer (BFCL irrelevance: the right answer is no call)."""


def ideal_call(ref: Reference, index: int = 0) -> dict[str, Any]:
    """The OpenAI tool call a perfect model makes for a reference (first acceptable values)."""
    args = {k: v[0] for k, v in ref["args"].items() if v[0] != ""}
    return {"id": f"functions.{ref['name']}:{index}", "type": "function",
            "function": {"name": ref["name"], "arguments": json.dumps(args)}}
