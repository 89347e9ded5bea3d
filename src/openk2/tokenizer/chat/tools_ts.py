"""Tool declarations as the K2.5/K2.6 TypeScript-namespace text (`tools_ts_str`).

K2.5+ was trained on tools declared as TypeScript types rather than JSON (JSON costs ~1.7 pp on
BFCL). This module reproduces the output of Moonshot's `tool_declaration_ts.py`, re-implemented
from its observable format:

    # Tools

    ## functions
    namespace functions {
    // <function description>
    type <name> = (_: {
      // <field description>
      // <constraint>: <value>, ...
      // Default: <json>
      <field>[?]: <type>,
      ...
    }) => any;
    }

Required fields come first, then optional ones (`?`), each group sorted by name. `$defs` become
`interface` blocks and a `"#"` self-reference makes the parameters an `interface parameters`.
Schemas this encoder cannot express raise `ToolSchemaError`; the template then falls back to
compact JSON, as the reference does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INDENT = "  "

_SCALAR_CONSTRAINTS = {
    "string": ("maxLength", "minLength", "pattern"),
    "number": ("maximum", "minimum"),
    "integer": ("maximum", "minimum"),
}
_ARRAY_CONSTRAINTS = ("minItems", "maxItems")
_UNION_NAMES = {"string": "string", "number": "number", "integer": "number",
                "boolean": "boolean", "null": "null", "object": "{}", "array": "Array<any>"}


class ToolSchemaError(ValueError):
    """A tool's JSON schema uses something the TypeScript rendering does not support."""


@dataclass
class _Defs:
    """`$defs` seen so far while parsing one function, and whether `"#"` was referenced."""

    schemas: dict[str, Any] = field(default_factory=dict)
    self_ref: bool = False


# ---- comments --------------------------------------------------------------------------------


def _comment(text: Any, indent: str = "") -> str:
    """`// line` per line of `text`; empty lines stay empty (no `//`)."""
    if not isinstance(text, str):
        raise ToolSchemaError(f"description must be a string, got {type(text).__name__}")
    return "\n".join(f"{indent}// {line}" if line else "" for line in text.split("\n"))


def _doc(schema: Mapping[str, Any], constraint_keys: tuple[str, ...], indent: str) -> str:
    """Description and constraint comment lines for one type, each ending in a newline."""
    lines = []
    if description := schema.get("description", ""):
        lines.append(_comment(description, indent))
    constraints = sorted((k, schema[k]) for k in constraint_keys if k in schema)
    if constraints:
        lines.append(indent + "// " + ", ".join(f"{k}: {v}" for k, v in constraints))
    return "".join(line + "\n" for line in lines)


# ---- types -----------------------------------------------------------------------------------


@dataclass
class _Type:
    """One parsed schema node: how to print it and its doc comment."""

    schema: Mapping[str, Any]
    kind: str
    constraint_keys: tuple[str, ...] = ()
    children: list[Any] = field(default_factory=list)
    text: str = ""
    extra: _Type | None = None
    """Parsed `additionalProperties` schema (objects only)."""

    def doc(self, indent: str) -> str:
        return _doc(self.schema, self.constraint_keys, indent)

    def render(self, indent: str) -> str:
        return _RENDER[self.kind](self, indent)


@dataclass
class _Field:
    """An object property: name, type, optional flag and default."""

    name: str
    type: _Type
    optional: bool
    default: Any

    def render(self, indent: str) -> str:
        out = self.type.doc(indent)
        if self.default is not None:
            out += f"{indent}// Default: {_default_repr(self.default)}\n"
        mark = "?" if self.optional else ""
        return out + f"{indent}{self.name}{mark}: {self.type.render(indent)}"


def _default_repr(value: Any) -> str:
    if isinstance(value, int | float | bool):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _render_scalar(t: _Type, indent: str) -> str:
    return t.text


def _render_object(t: _Type, indent: str) -> str:
    required = sorted((f for f in t.children if not f.optional), key=lambda f: f.name)
    optional = sorted((f for f in t.children if f.optional), key=lambda f: f.name)
    inner = indent + INDENT
    parts = [f.render(inner) for f in [*required, *optional]]
    extra = t.schema.get("additionalProperties") if t.schema else None
    if extra is not None:
        parts.append(f"{inner}[k: string]: {_extra_type(t, extra, inner)}")
    if not parts:
        return "{}"
    return "{\n" + ",\n".join(parts) + "\n" + indent + "}"


def _extra_type(t: _Type, extra: Any, indent: str) -> str:
    if extra is True:
        return "any"
    if extra is False:
        return "never"
    if isinstance(extra, dict):
        assert t.extra is not None  # parsed together with the schema
        return t.extra.render(indent)
    raise ToolSchemaError(f"unsupported additionalProperties: {extra!r}")


def _render_array(t: _Type, indent: str) -> str:
    item: _Type = t.children[0]
    inner = indent + INDENT
    item_doc = item.doc(inner)
    if item_doc:
        return "Array<\n" + item_doc + inner + item.render(inner) + "\n" + indent + ">"
    return f"Array<{item.render(indent)}>"


def _render_enum(t: _Type, indent: str) -> str:
    return " | ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in t.schema["enum"])


def _render_any_of(t: _Type, indent: str) -> str:
    return " | ".join(member.render(indent) for member in t.children)


_RENDER = {
    "scalar": _render_scalar,
    "object": _render_object,
    "array": _render_array,
    "enum": _render_enum,
    "anyOf": _render_any_of,
    "union": _render_scalar,
    "ref": _render_scalar,
}


# ---- parsing ---------------------------------------------------------------------------------


def _parse(schema: Any, defs: _Defs) -> _Type:
    """Parse one JSON-schema node; precedence `$ref` > `anyOf` > `enum` > `type` > `{}`."""
    if isinstance(schema, bool):
        return _Type({}, "scalar", text="any" if schema else "null")
    if not isinstance(schema, dict):
        raise ToolSchemaError(f"schema must be an object or boolean, got {schema!r}")
    if "$ref" in schema:
        return _Type(schema, "ref", text=_resolve_ref(schema["$ref"], defs))
    if "anyOf" in schema:
        return _Type(schema, "anyOf", children=[_parse(s, defs) for s in schema["anyOf"]])
    if "enum" in schema:
        _check_enum(schema)
        return _Type(schema, "enum")
    if "type" in schema:
        return _parse_typed(schema, defs)
    if schema == {}:
        return _Type(schema, "scalar", text="any")
    raise ToolSchemaError(f"schema has no type, enum, anyOf or $ref: {schema!r}")


def _parse_typed(schema: dict[str, Any], defs: _Defs) -> _Type:
    typ = schema["type"]
    if isinstance(typ, list):
        try:
            return _Type(schema, "union", text=" | ".join(_UNION_NAMES[t] for t in typ))
        except (KeyError, TypeError) as e:
            raise ToolSchemaError(f"unsupported type union {typ!r}") from e
    if typ == "object":
        return _parse_object(schema, defs)
    if typ == "array":
        items = schema.get("items")
        item = _parse(items, defs) if items else _Type({}, "scalar", text="any")
        return _Type(schema, "array", _ARRAY_CONSTRAINTS, children=[item])
    name = "number" if typ == "integer" else str(typ)
    keys = _SCALAR_CONSTRAINTS.get(typ, ()) if isinstance(typ, str) else ()
    return _Type(schema, "scalar", keys, text=name)


def _parse_object(schema: dict[str, Any], defs: _Defs) -> _Type:
    """Object node: registers its `$defs` before parsing properties (refs resolve eagerly)."""
    node = _Type(schema, "object")
    if not schema:
        return node
    defs.schemas.update(schema.get("$defs") or {})
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        node.extra = _parse(extra, defs)
    properties = schema.get("properties")
    if properties is None:
        return node
    required = set(schema.get("required", []))
    node.children = [
        _Field(name, _parse(prop, defs), name not in required,
               prop.get("default") if isinstance(prop, dict) else None)
        for name, prop in properties.items()
    ]
    return node


def _resolve_ref(ref: Any, defs: _Defs) -> str:
    if ref == "#":
        defs.self_ref = True
        return "parameters"
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.split("/")[-1]
        if name not in defs.schemas:
            raise ToolSchemaError(f"reference not found: {ref}")
        return name
    raise ToolSchemaError(f"unsupported reference format: {ref!r}")


def _check_enum(schema: dict[str, Any]) -> None:
    """Enum values must match a declared scalar type (a list may add only "null")."""
    if "type" not in schema:
        return
    typ = schema["type"]
    if isinstance(typ, list):
        if len(typ) == 1:
            typ = typ[0]
        elif len(typ) == 2 and "null" in typ:
            typ = typ[0] if typ[0] != "null" else typ[1]
        else:
            raise ToolSchemaError(f"enum type {typ!r} is not supported")
    checks = {"string": str, "number": int | float, "integer": int, "boolean": bool}
    expected = checks.get(typ) if isinstance(typ, str) else None
    for value in schema["enum"]:
        if value is not None and expected is not None and not isinstance(value, expected):
            raise ToolSchemaError(f"enum value {value!r} is not of type {typ}")


# ---- functions and tools ---------------------------------------------------------------------


def function_to_typescript(function: Mapping[str, Any]) -> str:
    """One OpenAI function definition -> its `type NAME = (_: {...}) => any;` block."""
    defs = _Defs()
    params = _parse_object(function.get("parameters") or {}, defs)
    interfaces = []
    self_ref = defs.self_ref  # decided before the $defs are parsed, as in the reference
    if self_ref:
        body = ",\n".join(f.render(INDENT) for f in params.children)
        interfaces.append("interface parameters {" + (f"\n{body}\n" if body else "") + "}")
    for name, schema in list(defs.schemas.items()):
        node = _parse(schema, defs)
        description = schema.get("description", "")
        prefix = _comment(description) + "\n" if description else ""
        interfaces.append(f"{prefix}interface {name} {node.render('')}")
    name = function.get("name", "function")
    signature = "parameters" if self_ref else params.render("")
    description = function.get("description")
    blocks = ["\n".join(interfaces), _comment(description) if description else "",
              f"type {name} = (_: {signature}) => any;"]
    return "\n".join(b for b in blocks if b)


def tools_to_typescript(tools: list[Any]) -> str:
    """OpenAI-format tools -> the `# Tools` namespace text; "" when there is no function tool."""
    functions = []
    for tool in tools or []:
        if not isinstance(tool, dict):
            raise ToolSchemaError(f"each tool must be an object, got {tool!r}")
        if tool.get("type") == "function" and (function := tool.get("function", {})):
            functions.append(function_to_typescript(function))
    if not functions:
        return ""
    return "# Tools\n\n## functions\nnamespace functions {\n" + "\n".join(functions) + "\n}\n"
