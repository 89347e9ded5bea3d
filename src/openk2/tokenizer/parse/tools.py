"""Which declared function a K2 tool call means, and the id to return for it.

K2 writes `functions.NAME:IDX` as a call's id, but real K2-family output (and other providers'
K2 deployments) also shows `NAME:IDX`, `functions.NAME`, a bare `NAME`, a bare counter (`0`)
and client-style ids (`call_abc123`). The parser knows the request's declared tools, so:

1. an id whose name part (with or without `functions.`, or its last dotted segment) is a
   declared name resolves to that name;
2. an id that carries a name (`functions.` prefix or a `:IDX` suffix after a non-numeric name)
   that is not declared keeps that name and is marked `unknown_tool`;
3. an id that carries no name (a counter, a client-style id, nothing) resolves to the only
   declared tool, or, with several, to the single tool whose schema fits the argument keys
   (every key a declared property, every required property present); otherwise the call
   cannot be attributed and is dropped with an error.

Without a declared list (`ToolCatalog.open()`, e.g. offline evaluation) rule 1 accepts any
well-formed name. The returned id is the model's own id when it is already the standard
`functions.NAME:IDX` for the resolved name, else it is rebuilt in that form, so the next
turn's prompt shows the model its native format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FUNCTIONS_PREFIX = "functions."
_INDEX_SUFFIX = re.compile(r"(?P<name>.*?):(?P<index>\d+)")
_NAME = re.compile(r"[^\s<>:]+")


@dataclass(frozen=True, slots=True)
class DeclaredTool:
    """One function of the request's `tools`: its name and JSON-schema parameters."""

    name: str
    parameters: Mapping[str, Any] | None = None

    def fits(self, arguments: Mapping[str, Any]) -> bool:
        """Whether `arguments` could be a call of this tool (keys against the schema)."""
        schema = self.parameters or {}
        properties = schema.get("properties")
        required = schema.get("required") or ()
        if isinstance(properties, Mapping) and not set(arguments) <= set(properties):
            return False
        return all(key in arguments for key in required)


@dataclass(frozen=True, slots=True)
class CallName:
    """How an id resolved: the function name (None: still unknown) and the kind of match."""

    name: str | None
    known: bool
    """True when `name` is declared (or the catalog is open)."""
    index: int | None
    """The IDX the model wrote, if any."""


@dataclass(frozen=True, slots=True)
class ToolCatalog:
    """The declared tools of one request, as the parser needs them."""

    tools: tuple[DeclaredTool, ...] = ()
    is_open: bool = False
    """No declared list: any well-formed name is accepted."""
    _by_name: dict[str, DeclaredTool] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((t.name, t) for t in self.tools)

    @classmethod
    def open(cls) -> ToolCatalog:
        return cls(is_open=True)

    @classmethod
    def from_openai(cls, tools: Iterable[Mapping[str, Any]]) -> ToolCatalog:
        """From OpenAI `tools` entries (`{"type": "function", "function": {...}}`)."""
        declared = []
        for tool in tools:
            fn = tool.get("function") or {}
            if isinstance(fn.get("name"), str):
                declared.append(DeclaredTool(fn["name"], fn.get("parameters")))
        return cls(tuple(declared))

    def resolve(self, raw_id: str) -> CallName:
        """Rules 1-3 of the module docstring, as far as the id alone allows."""
        name_part, index = _split(raw_id)
        for candidate in _candidates(name_part):
            if candidate in self._by_name:
                return CallName(candidate, True, index)
        written = name_part.removeprefix(FUNCTIONS_PREFIX)
        if self.is_open and _is_name(written):
            return CallName(written, True, index)
        names_itself = (name_part.startswith(FUNCTIONS_PREFIX) or index is not None) and \
            _is_name(written)
        if names_itself:
            return CallName(written, False, index)
        if len(self.tools) == 1:
            return CallName(self.tools[0].name, True, index)
        return CallName(None, False, index)

    def infer(self, arguments: Any) -> str | None:
        """The single declared tool whose schema fits `arguments` (a parsed JSON object)."""
        if not isinstance(arguments, dict):
            return None
        fitting = [t.name for t in self.tools if t.fits(arguments)]
        return fitting[0] if len(fitting) == 1 else None


def call_id(raw_id: str, name: str, index: int) -> str:
    """The id to return: the model's own if standard for `name`, else `functions.NAME:IDX`."""
    name_part, written = _split(raw_id)
    if name_part == FUNCTIONS_PREFIX + name and written is not None:
        return raw_id.strip()
    return f"{FUNCTIONS_PREFIX}{name}:{index if written is None else written}"


def _split(raw_id: str) -> tuple[str, int | None]:
    """`functions.f:3` -> ("functions.f", 3); a bare counter `3` -> ("", 3)."""
    raw = raw_id.strip()
    if raw.isdigit():
        return "", int(raw)
    match = _INDEX_SUFFIX.fullmatch(raw)
    return (match["name"], int(match["index"])) if match else (raw, None)


def _candidates(name_part: str) -> list[str]:
    bare = name_part.removeprefix(FUNCTIONS_PREFIX)
    return list(dict.fromkeys([name_part, bare, bare.rsplit(".", 1)[-1]]))


def _is_name(text: str) -> bool:
    """A plausible function name: no spaces or markup, not a bare number."""
    return bool(_NAME.fullmatch(text)) and not text.isdigit()
