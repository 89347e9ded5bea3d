"""The schema-driven JSON matcher used to force tool-call arguments."""

import json
import random

import pytest

from openk2.engine import json_automaton as ja

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 10},
        "unit": {"enum": ["c", "f"]},
        "days": {"type": "integer"},
        "temp": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "exact": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
    },
    "required": ["city"],
}


def matches(schema: dict, text: str) -> bool:
    state = ja.feed(ja.start(schema), text)
    return state is not None and not state


def test_accepts_compact_json_in_schema_order() -> None:
    good = (
        '{"city":"Paris","unit":"c","days":3,"temp":-1.5,"tags":["a","b"],"exact":true,'
        '"note":null,"where":{"lat":0.25}}'
    )
    assert matches(WEATHER, good)
    assert matches(WEATHER, good.replace('"note":null', '"note":"x"'))


@pytest.mark.parametrize(
    "bad",
    [
        '{"unit":"c"}',  # keys are forced in order
        '{"city": "Paris"}',  # no whitespace
        '{"city":"Paris is too long"',  # maxLength
        '{"city":"P","unit":"k"',  # enum
        '{"city":"P","unit":"c","days":1.5',  # integer
        '{"city":"P","unit":"c","days":01',  # leading zero
        '{"city":"a\\n"',  # no escapes
    ],
)
def test_rejects_texts_outside_the_schema(bad: str) -> None:
    assert ja.feed(ja.start(WEATHER), bad) is None


def test_nothing_is_accepted_after_the_value_ends() -> None:
    assert ja.feed(ja.start({"type": "object"}), "{}") == ()
    assert ja.feed(ja.start({"type": "object"}), "{} ") is None


def test_random_walks_always_finish_with_valid_json() -> None:
    rng = random.Random(0)
    alphabet = list('abc019-."{}[],:tfnrueasl ')
    for _ in range(200):
        state: ja.State = ja.start(WEATHER)
        text = ""
        for _ in range(400):
            if not state:
                break
            options = [c for c in alphabet if ja.step(state, c) is not None]
            ch = rng.choice(options) if options and rng.random() < 0.9 else ja.suggest(state)
            assert ch is not None
            nxt = ja.step(state, ch)
            assert nxt is not None, (text, ch)
            state, text = nxt, text + ch
        assert not state, text
        value = json.loads(text)
        assert isinstance(value["city"], str) and len(value["city"]) <= 10
        assert value["unit"] in ("c", "f") and isinstance(value["days"], int)


def test_choices_with_shared_prefixes_end_on_the_next_character() -> None:
    state = ja.start({"type": "array", "items": {"enum": [1, 10]}})
    assert ja.feed(state, "[1,10,1]") == ()
    assert ja.feed(state, "[100]") is None
    names = ja.start_choice(["get:0", "get_more:0"])
    assert ja.feed(names, "get_more:0") == ()
    assert ja.suggest(names) == "g"


def test_schema_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unsupported JSON schema type"):
        ja.feed(ja.start({"type": "object", "properties": {"x": {"type": "date"}}}), '{"x":1')
    with pytest.raises(ValueError, match="must be an object"):
        ja.start([])  # type: ignore[arg-type]
