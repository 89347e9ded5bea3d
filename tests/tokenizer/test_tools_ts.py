"""Golden TypeScript tool declarations (hand-checked against the reference format)."""

from typing import Any

import pytest

from openk2.tokenizer.chat import tool_declaration, tools_to_typescript, tools_ts_str


def _tool(name: str, parameters: Any, description: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if description is not None:
        function["description"] = description
    return {"type": "function", "function": function}


WEATHER = _tool("get_weather", {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"},
                   "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
}, "Get weather information")


def test_spec_example_get_weather() -> None:
    assert tools_to_typescript([WEATHER]) == (
        '# Tools\n\n## functions\nnamespace functions {\n// Get weather information\n'
        'type get_weather = (_: {\n  // City name\n  city: string,\n  unit?: "c" | "f"\n'
        '}) => any;\n}\n'
    )


def test_required_first_then_optional_each_sorted_with_constraints_and_defaults() -> None:
    tool = _tool("search", {
        "type": "object",
        "properties": {
            "zeta": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
            "alpha": {"type": "string", "maxLength": 5, "pattern": "^a",
                      "description": "First\n\nafter blank"},
            "query": {"type": "string"},
            "flag": {"type": "boolean", "default": True},
            "mode": {"type": "string", "default": "fast"},
        },
        "required": ["query", "alpha"],
    })
    assert tools_to_typescript([tool]) == (
        "# Tools\n\n## functions\nnamespace functions {\n"
        "type search = (_: {\n"
        "  // First\n\n  // after blank\n  // maxLength: 5, pattern: ^a\n  alpha: string,\n"
        "  query: string,\n"
        "  // Default: True\n  flag?: boolean,\n"
        '  // Default: "fast"\n  mode?: string,\n'
        "  // maximum: 10, minimum: 1\n  // Default: 3\n  zeta?: number\n"
        "}) => any;\n}\n"
    )


def test_nested_objects_arrays_unions_and_any_of() -> None:
    tool = _tool("plan", {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "minItems": 1,
                      "items": {"type": "object", "description": "One step",
                                "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "any": {"type": "array"},
            "maybe": {"type": ["string", "null"]},
            "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},
            "closed": {"type": "object", "additionalProperties": False},
            "free": {},
        },
        "required": ["steps"],
    })
    assert tools_to_typescript([tool]) == (
        "# Tools\n\n## functions\nnamespace functions {\n"
        "type plan = (_: {\n"
        "  // minItems: 1\n"
        "  steps: Array<\n    // One step\n    {\n      id: number\n    }\n  >,\n"
        "  any?: Array<any>,\n"
        "  closed?: {\n    [k: string]: never\n  },\n"
        "  either?: string | number,\n"
        "  free?: any,\n"
        "  maybe?: string | null,\n"
        "  meta?: {\n    [k: string]: string\n  },\n"
        "  tags?: Array<string>\n"
        "}) => any;\n}\n"
    )


def test_defs_become_interfaces_and_self_reference_names_parameters() -> None:
    tool = _tool("tree", {
        "type": "object",
        "$defs": {"Leaf": {"type": "object", "description": "A leaf",
                           "properties": {"v": {"type": "string"}}, "required": ["v"]}},
        "properties": {"leaf": {"$ref": "#/$defs/Leaf"}, "child": {"$ref": "#"}},
        "required": ["leaf"],
    }, "Walk a tree")
    assert tools_to_typescript([tool]) == (
        "# Tools\n\n## functions\nnamespace functions {\n"
        # the self-referencing interface keeps the schema's property order (no required-first)
        "interface parameters {\n  leaf: Leaf,\n  child?: parameters\n}\n"
        "// A leaf\ninterface Leaf {\n  v: string\n}\n"
        "// Walk a tree\n"
        "type tree = (_: parameters) => any;\n}\n"
    )


def test_several_tools_and_non_function_tools() -> None:
    empty = _tool("noop", {"type": "object", "properties": {}})
    assert tools_to_typescript([{"type": "_plugin"}, empty, _tool("x", None)]) == (
        "# Tools\n\n## functions\nnamespace functions {\n"
        "type noop = (_: {}) => any;\ntype x = (_: {}) => any;\n}\n"
    )
    assert tools_to_typescript([{"type": "_plugin"}]) == ""


@pytest.mark.parametrize("bad_parameters", [
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}},
    {"type": "object", "properties": {"a": {"$ref": "http://x"}}},
    {"type": "object", "properties": {"a": {"description": "no type"}}},
    {"type": "object", "properties": {"a": {"enum": [1, "x"], "type": "string"}}},
    {"type": "object", "properties": {"a": {"type": ["string", "weird"]}}},
    {"type": "object", "properties": {"a": {"type": "object", "additionalProperties": "x"}}},
])
def test_unsupported_schemas_fall_back_to_compact_json(bad_parameters: dict[str, Any]) -> None:
    tools = [_tool("f", bad_parameters, "Ünïcode")]
    assert tools_ts_str(tools) is None
    declaration = tool_declaration(tools)
    assert declaration.startswith('[{"function":{"description":"Ünïcode","name":"f",')
    assert declaration.endswith('"type":"function"}]')
    assert ", " not in declaration and ": " not in declaration


def test_json_fallback_is_deep_sorted() -> None:
    tools = [{"type": "function", "function": {"parameters": {"type": "object", "properties": {
        "b": {"type": "string", "description": "x"}, "a": {"description": "no type"}}},
        "name": "f"}}]
    assert tool_declaration(tools) == (
        '[{"function":{"name":"f","parameters":{"properties":{"a":{"description":"no type"},'
        '"b":{"description":"x","type":"string"}},"type":"object"}},"type":"function"}]'
    )
