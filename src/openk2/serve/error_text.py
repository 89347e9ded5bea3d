"""Pydantic validation errors as OpenAI states them: a dotted `param` and one readable message.

Pydantic's error locations name union branches (`str`, `list[constrained-str]`,
`function-after[...]`) and tags between field names; a client only wants the field path
(`stop`, `tools.0.function.parameters`). A union's failure is one error per branch; their
messages are joined, so `stop: ["a"] * 20` says "... or List should have at most 16 items".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_FIELD = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "literal"})
_VALUE_ERROR = "Value error, "


def param_path(loc: Sequence[Any]) -> str | None:
    """Dotted field path of an error location, up to the first union branch (`body` dropped)."""
    parts: list[str] = []
    for part in loc:
        if part == "body" and not parts:
            continue
        if isinstance(part, int):
            parts.append(str(part))
        elif isinstance(part, str) and _FIELD.match(part) and part not in _BRANCH_NAMES:
            parts.append(part)
        else:
            break
    return ".".join(parts) or None


def describe(errors: Sequence[Any]) -> tuple[str | None, str]:
    """(param, message) for a list of pydantic error dicts (the first field that failed)."""
    if not errors:
        return None, "invalid request"
    param = param_path(errors[0].get("loc", ()))
    same = [e for e in errors if param_path(e.get("loc", ())) == param]
    messages = list(dict.fromkeys(_message(e) for e in same))
    text = " or ".join(messages)
    return param, f"{param}: {text}" if param else text


def _message(error: Any) -> str:
    return str(error.get("msg", "invalid value")).replace(_VALUE_ERROR, "")
