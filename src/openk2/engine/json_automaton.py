"""A character-level matcher for compact JSON that follows a JSON schema, for forced tool calls.

`tool_choice="required"` or a named function must yield arguments that parse and fit the tool's
schema even from a weak (or random) model, as real servers do with structured-output backends.
The matcher accepts exactly the compact JSON texts (no whitespace) that fit a bounded schema:
object keys are emitted in schema order and forced, so the model only chooses values; strings,
numbers and arrays have length caps so every path terminates.

State is an immutable tuple of frames (top last), so testing a candidate token never disturbs
the current state. Supported: type (incl. lists), properties, enum, const, anyOf/oneOf, items,
minLength/maxLength, maxItems. A schema without a type means any scalar.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, TypeAlias

MAX_STRING_CHARS = 48
MAX_NUMBER_DIGITS = 12
MAX_ARRAY_ITEMS = 6
_DIGITS = "0123456789"


class Lit(NamedTuple):
    """Literal text that must appear next."""

    text: str
    pos: int = 0


class Str(NamedTuple):
    """Inside a string's contents (opening quote consumed); `"` closes it."""

    length: int
    min_len: int
    max_len: int


class Num(NamedTuple):
    """A number `-?(0|[1-9][0-9]*)(.[0-9]+)?`; phase says what may come next."""

    integer: bool
    phase: str = "start"
    digits: int = 0


class Choice(NamedTuple):
    """One of a few fixed texts (enums, booleans, tool names)."""

    options: tuple[str, ...]
    typed: str = ""


class Value(NamedTuple):
    """A value not started yet; its first character picks among candidate schemas."""

    schemas: tuple[dict[str, Any], ...]


class Arr(NamedTuple):
    """An array of `item` values."""

    item: dict[str, Any]
    max_items: int
    count: int = 0
    phase: str = "open"


Frame: TypeAlias = Lit | Str | Num | Choice | Value | Arr
State: TypeAlias = tuple[Frame, ...]


def start(schema: dict[str, Any]) -> State:
    """Initial state for one JSON value matching `schema`."""
    return (Value(candidates(schema)),)


def start_choice(options: list[str]) -> State:
    """Initial state for exactly one of `options` (texts, not JSON)."""
    if not options:
        raise ValueError("a choice needs at least one option")
    return (Choice(tuple(options)),)


def step(state: State, ch: str) -> State | None:
    """Consume one character; None when it cannot continue a matching text."""
    if not state:
        return None
    top, rest = state[-1], state[:-1]
    if isinstance(top, Lit):
        return _lit(top, rest, ch)
    if isinstance(top, Str):
        return _str(top, rest, ch)
    if isinstance(top, Num):
        return _num(top, rest, ch)
    if isinstance(top, Choice):
        return _choice(top, rest, ch)
    if isinstance(top, Value):
        return _value(top, rest, ch)
    return _arr(top, rest, ch)


def feed(state: State | None, text: str) -> State | None:
    """Consume a whole text (None as soon as one character fails)."""
    for ch in text:
        if state is None:
            return None
        state = step(state, ch)
    return state


def suggest(state: State) -> str | None:
    """A character that keeps the text valid and moves toward the end (None when complete)."""
    if not state:
        return None
    top, rest = state[-1], state[:-1]
    if isinstance(top, Lit):
        return top.text[top.pos]
    if isinstance(top, Str):
        return '"' if top.length >= top.min_len else "a"
    if isinstance(top, Num):
        return (suggest(rest) or "0") if top.phase in ("zero", "int", "frac") else "0"
    if isinstance(top, Choice):
        longer = [o for o in top.options if o.startswith(top.typed) and o != top.typed]
        return suggest(rest) if top.typed in top.options else longer[0][len(top.typed)]
    if isinstance(top, Value):
        return _first_chars(top.schemas[0])[0]
    return "[" if top.phase == "open" else "]"


def literal_prefix(state: State) -> str:
    """Text that every valid continuation starts with (forced output, no choice to make)."""
    return state[-1].text[state[-1].pos :] if state and isinstance(state[-1], Lit) else ""


def _lit(f: Lit, rest: State, ch: str) -> State | None:
    if f.text[f.pos] != ch:
        return None
    return rest if f.pos + 1 == len(f.text) else (*rest, f._replace(pos=f.pos + 1))


def _str(f: Str, rest: State, ch: str) -> State | None:
    if ch == '"':
        return rest if f.length >= f.min_len else None
    if ch == "\\" or ord(ch) < 0x20 or f.length >= f.max_len:
        return None
    return (*rest, f._replace(length=f.length + 1))


def _num(f: Num, rest: State, ch: str) -> State | None:
    nxt = _num_phase(f, ch)
    if nxt is not None:
        return (*rest, f._replace(phase=nxt, digits=f.digits + (ch in _DIGITS)))
    if f.phase in ("zero", "int", "frac"):
        return step(rest, ch)  # the number ended; the character belongs to what follows
    return None


def _num_phase(f: Num, ch: str) -> str | None:
    """Next phase after `ch` inside the number, or None if `ch` does not extend it."""
    if ch in _DIGITS and f.digits >= MAX_NUMBER_DIGITS:
        return None
    if f.phase == "start" and ch == "-":
        return "first"
    if f.phase in ("start", "first") and ch in _DIGITS:
        return "zero" if ch == "0" else "int"
    if f.phase in ("int", "frac0", "frac") and ch in _DIGITS:
        return "int" if f.phase == "int" else "frac"
    if f.phase in ("zero", "int") and ch == "." and not f.integer:
        return "frac0"
    return None


def _choice(f: Choice, rest: State, ch: str) -> State | None:
    typed = f.typed + ch
    extending = [o for o in f.options if o.startswith(typed)]
    if extending:
        if extending == [typed]:
            return rest
        return (*rest, f._replace(typed=typed))
    if f.typed in f.options:
        return step(rest, ch)
    return None


def _value(f: Value, rest: State, ch: str) -> State | None:
    for schema in f.schemas:
        if ch in _first_chars(schema):
            return step((*rest, *_expand(schema)), ch)
    return None


def _arr(f: Arr, rest: State, ch: str) -> State | None:
    if f.phase == "open":
        return (*rest, f._replace(phase="first")) if ch == "[" else None
    if ch == "]":
        return rest
    item = Value(candidates(f.item))
    if f.phase == "first":
        return step((*rest, f._replace(phase="after", count=1), item), ch)
    if ch == "," and f.count < f.max_items:
        return (*rest, f._replace(count=f.count + 1), item)
    return None


def candidates(schema: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Concrete single-type schemas a value of `schema` may take, in preference order."""
    if not isinstance(schema, dict):
        raise ValueError(f"a JSON schema must be an object, got {type(schema).__name__}")
    if "enum" in schema or "const" in schema:
        return (schema,)
    subs = schema.get("anyOf") or schema.get("oneOf")
    if subs:
        return tuple(c for sub in subs for c in candidates(sub))
    kind = schema.get("type")
    if isinstance(kind, list):
        return tuple({**schema, "type": k} for k in kind)
    if kind is None:
        if "properties" in schema:
            return ({**schema, "type": "object"},)
        return tuple({"type": k} for k in ("string", "number", "boolean", "null"))
    return (schema,)


def check_schema(schema: dict[str, Any], depth: int = 0) -> None:
    """Raise ValueError if any part of `schema` is outside the supported subset."""
    if depth > 32:
        raise ValueError("schema nesting deeper than 32 levels")
    for option in candidates(schema):
        _first_chars(option)
        if "enum" in option and not option["enum"]:
            raise ValueError("enum must list at least one value")
        for sub in (option.get("properties") or {}).values():
            check_schema(sub, depth + 1)
        if option.get("type") == "array":
            check_schema(option.get("items", {}), depth + 1)


def _first_chars(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return _dumps(schema["const"])[0]
    if "enum" in schema:
        return "".join(dict.fromkeys(_dumps(v)[0] for v in schema["enum"]))
    kind = schema.get("type")
    first = {
        "string": '"',
        "integer": "0-123456789",
        "number": "0-123456789",
        "boolean": "tf",
        "null": "n",
        "object": "{",
        "array": "[",
    }
    if kind not in first:
        raise ValueError(f"unsupported JSON schema type {kind!r}")
    return first[kind]


def _expand(schema: dict[str, Any]) -> tuple[Frame, ...]:
    """Frames for one value of a single-type schema, bottom first (the top is consumed first)."""
    if "const" in schema:
        return (Lit(_dumps(schema["const"])),)
    if "enum" in schema:
        if not schema["enum"]:
            raise ValueError("enum must list at least one value")
        return (Choice(tuple(_dumps(v) for v in schema["enum"])),)
    kind = schema["type"]
    if kind == "string":
        max_len = min(int(schema.get("maxLength", MAX_STRING_CHARS)), MAX_STRING_CHARS)
        min_len = min(int(schema.get("minLength", 0)), max_len)
        return (Str(0, min_len, max_len), Lit('"'))
    if kind in ("integer", "number"):
        return (Num(integer=kind == "integer"),)
    if kind == "boolean":
        return (Choice(("true", "false")),)
    if kind == "null":
        return (Lit("null"),)
    if kind == "array":
        max_items = min(int(schema.get("maxItems", MAX_ARRAY_ITEMS)), MAX_ARRAY_ITEMS)
        return (Arr(schema.get("items", {}), max_items),)
    return tuple(reversed(_object_frames(schema)))


def _object_frames(schema: dict[str, Any]) -> list[Frame]:
    """`{"k1":v1,"k2":v2}` with forced keys in schema order; values are free within their schema."""
    properties = schema.get("properties") or {}
    if not properties:
        return [Lit("{}")]
    frames: list[Frame] = []
    for i, (key, sub) in enumerate(properties.items()):
        frames.append(Lit(("{" if i == 0 else ",") + _dumps(key) + ":"))
        frames.append(Value(candidates(sub)))
    frames.append(Lit("}"))
    return frames


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
