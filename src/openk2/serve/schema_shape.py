"""Shape checks for the JSON schemas clients send (tool parameters, `response_format`).

A schema must itself be valid JSON Schema (checked against its draft's metaschema by the
`jsonschema` library; 2020-12 unless `$schema` names another) and nest no deeper than
MAX_SCHEMA_DEPTH, so that the template renderer and the guided decoder only ever see well-formed
input. Whether the guided decoder can *follow* a valid schema is its own check (chat_plan).
Errors are ValueErrors, raised inside pydantic validators, so they become 400s naming the field.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, SchemaError, validators

MAX_SCHEMA_DEPTH = 24
"""Nested objects/arrays in one schema; deeper ones are refused before any recursive walk."""


def check_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Return `schema` unchanged, or raise ValueError saying where it is malformed."""
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise ValueError(f"the JSON schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
    dialect = schema.get("$schema", "")
    if not isinstance(dialect, str):
        raise ValueError("`$schema` must be a string (a JSON Schema dialect URI)")
    validator = validators.validator_for(schema, default=Draft202012Validator)
    try:
        validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValueError(f"invalid JSON schema at {where}: {exc.message}") from None
    return schema


def _depth(value: Any) -> int:
    """Nesting depth of dicts and lists, without recursion (hostile input can be very deep)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest
