"""Client JSON schemas: the metaschema, the depth cap and a non-string `$schema`."""

import pytest

from openk2.serve.schema_shape import MAX_SCHEMA_DEPTH, check_json_schema


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "object", "properties": "x"}, "at properties"),
        ({"type": "object", "properties": {"a": "string"}}, "at properties/a"),
        ({"type": "object", "required": 5}, "at required"),
        ({"type": "date"}, "at type"),
        ({"type": "string", "maxLength": -1}, "at maxLength"),
        ({"anyOf": {}}, "at anyOf"),
        ({"$schema": ["x"]}, "must be a string"),
    ],
)
def test_malformed_schemas_say_where(schema: dict, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        check_json_schema(schema)


def test_valid_schemas_pass_unchanged() -> None:
    schema = {"type": "object", "properties": {"a": True, "b": {"$ref": "#/$defs/b"}},
              "$defs": {"b": {"type": ["string", "null"]}}, "required": ["a"]}  # fmt: skip
    assert check_json_schema(schema) is schema
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}
    assert check_json_schema(draft7) is draft7  # tuple-form items are valid in draft 7 only
    with pytest.raises(ValueError, match="at items"):
        check_json_schema({"items": [{"type": "string"}]})


def test_deep_schemas_are_refused_before_any_recursion() -> None:
    deep: dict = {}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(ValueError, match="nests deeper"):
        check_json_schema(deep)
    hostile: list = []
    for _ in range(100_000):
        hostile = [hostile]
    with pytest.raises(ValueError, match="nests deeper"):
        check_json_schema({"enum": hostile})
