"""Structured outputs through the official `openai` client, served by the random `debug` model.

The model's weights are random, so only the grammar makes its replies valid. Schemas bound every
value (a random model has no reason to end an unbounded string); the bounds are well past the
old hand-written matcher's caps (48-character strings, 6-item arrays).
"""

import json
import re

import jsonschema
import openai
import pytest
from openai import OpenAI

INSTANT = {"thinking": {"type": "disabled"}}
USER = [{"role": "user", "content": "Describe a city as JSON."}]
CITY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "tags", "kind", "where", "code"],
    "properties": {
        "name": {"type": "string", "minLength": 50, "maxLength": 70},
        "tags": {"type": "array", "minItems": 7, "maxItems": 9,
                 "items": {"type": "string", "maxLength": 4}},
        "kind": {"anyOf": [{"enum": ["town", "city"]},
                           {"type": "integer", "minimum": 0, "maximum": 9}]},
        "where": {"type": "object", "additionalProperties": False, "required": ["lat", "lon"],
                  "properties": {"lat": {"type": "integer", "minimum": -90, "maximum": 90},
                                 "lon": {"type": "integer", "minimum": -180, "maximum": 180}}},
        "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
    },
}  # fmt: skip


def json_schema_format(schema: dict, strict: bool = True) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "city", "schema": schema,
                                                   "strict": strict}}  # fmt: skip


@pytest.mark.parametrize("thinking", [False, True])
def test_json_schema_replies_validate(client: OpenAI, thinking: bool) -> None:
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=400, seed=3,
        response_format=json_schema_format(CITY), extra_body={} if thinking else INSTANT,
    )  # fmt: skip
    message = resp.choices[0].message
    assert resp.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(message.content or ""), CITY)
    assert bool(getattr(message, "reasoning_content", None)) == thinking


def test_streamed_json_schema_reply_validates(client: OpenAI) -> None:
    chunks = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=400, seed=5, stream=True,
        response_format=json_schema_format(CITY), extra_body=INSTANT,
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), CITY)


def test_non_strict_schemas_skip_what_cannot_be_enforced(client: OpenAI) -> None:
    schema = {**CITY, "not": {"type": "null"}}  # `not` is beyond the grammar engine
    fmt = json_schema_format(schema, strict=False)
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=400, seed=3, response_format=fmt,
        extra_body=INSTANT,
    )  # fmt: skip
    jsonschema.validate(json.loads(resp.choices[0].message.content or ""), CITY)
    with pytest.raises(openai.BadRequestError, match="Unimplemented keys") as exc:
        client.chat.completions.create(
            model="debug", messages=USER, response_format=json_schema_format(schema)
        )
    assert exc.value.body["param"] == "response_format"  # type: ignore[index]


def test_json_object_replies_are_objects(client: OpenAI) -> None:
    """Any object may have any keys, so a random model often never closes one: of 16 choices,
    the ones that finish must be objects (and some do finish)."""
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=200, seed=1, temperature=1.0, n=16,
        response_format={"type": "json_object"}, extra_body=INSTANT,
    )  # fmt: skip
    finished = [c.message.content or "" for c in resp.choices if c.finish_reason == "stop"]
    assert finished
    assert all(isinstance(json.loads(text), dict) for text in finished)
    cut = [c.message.content or "" for c in resp.choices if c.finish_reason == "length"]
    assert all(text.startswith("{") for text in cut)


def test_vllm_regex_choice_and_grammar_fields(client: OpenAI) -> None:
    def content(extra: dict) -> str:
        resp = client.chat.completions.create(
            model="debug", messages=USER, max_tokens=60, seed=2, extra_body={**INSTANT, **extra}
        )
        return resp.choices[0].message.content or ""

    assert re.fullmatch(r"[A-Z]{2}-\d{3}", content({"guided_regex": r"[A-Z]{2}-\d{3}"}))
    choice = content({"structured_outputs": {"choice": ["sunny", "rainy", "snowy"]}})
    assert choice in ("sunny", "rainy", "snowy")
    lark = 'start: "temp=" NUM " " UNIT\nNUM: /-?[0-9]{1,2}/\nUNIT: "C" | "F"'
    assert re.fullmatch(r"temp=-?\d{1,2} [CF]", content({"guided_grammar": lark}))
    gbnf = 'root ::= "yes" | "no"'
    assert content({"structured_outputs": {"grammar": gbnf}}) in ("yes", "no")


def test_text_completions_take_the_same_fields(client: OpenAI) -> None:
    resp = client.completions.create(
        model="debug", prompt="The code is", max_tokens=30, seed=4,
        extra_body={"structured_outputs": {"regex": r" [a-f0-9]{8}"}},
    )  # fmt: skip
    assert re.fullmatch(r" [a-f0-9]{8}", resp.choices[0].text)


def test_one_forced_call_with_strict_arguments(client: OpenAI) -> None:
    where = CITY["properties"]["where"]
    tool = {"type": "function", "function": {"name": "locate", "strict": True, "parameters": where}}
    resp = client.chat.completions.create(
        model="debug", messages=USER, tools=[tool], tool_choice="required", max_tokens=200,
        parallel_tool_calls=False, seed=6,
    )  # fmt: skip
    (call,) = resp.choices[0].message.tool_calls or []
    assert call.function.name == "locate" and call.id == "functions.locate:0"
    jsonschema.validate(json.loads(call.function.arguments), where)


def test_bad_constraints_are_400_naming_the_field(client: OpenAI) -> None:
    bad_tool = {"type": "function", "function": {"name": "f", "strict": True, "parameters": {
        "type": "object", "properties": {"x": {"type": "string", "pattern": "(?=a)"}}}}}
    cases = [
        ({"tools": [bad_tool], "tool_choice": "required"}, "tools"),
        ({"response_format": {"type": "json_object"}, "extra_body": {"guided_regex": "a"}},
         "guided_regex"),
        ({"extra_body": {"guided_grammar": "start: <|no_such_token|>"}}, "guided_grammar"),
        ({"extra_body": {"structured_outputs": {"json": "{not json"}}}, "structured_outputs.json"),
    ]  # fmt: skip
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="debug", messages=USER, **kwargs)
        assert exc.value.body["param"] == param, exc.value.body  # type: ignore[index]


def test_auto_tools_with_a_format_give_json_or_valid_calls(client: OpenAI) -> None:
    where = CITY["properties"]["where"]
    tool = {"type": "function", "function": {"name": "locate", "parameters": where}}
    kinds = set()
    for seed in range(6):
        resp = client.chat.completions.create(
            model="debug", messages=USER, tools=[tool], max_tokens=400, seed=seed,
            response_format=json_schema_format(CITY), extra_body=INSTANT,
        )  # fmt: skip
        message = resp.choices[0].message
        if message.tool_calls:
            kinds.add("call")
            for call in message.tool_calls:
                jsonschema.validate(json.loads(call.function.arguments), where)
        else:
            kinds.add("json")
            jsonschema.validate(json.loads(message.content or ""), CITY)
    assert kinds == {"call", "json"}
