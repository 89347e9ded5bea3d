"""The `tool_declare` system message body: TypeScript declaration, JSON as the fallback.

K2.5/K2.6's `apply_chat_template` deep-sorts every dict in `tools` by key, tries the TypeScript
rendering, and hands the template `tools_ts_str`; when that fails (or yields nothing) the
template prints the tools as compact JSON, `tojson(separators=(',', ':'))`, non-ASCII kept.
"""

from __future__ import annotations

import json
from typing import Any

from openk2.tokenizer.chat.content import MessageFormatError
from openk2.tokenizer.chat.tools_ts import tools_to_typescript

# What a schema the encoder cannot express raises (the reference catches every exception).
_ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def deep_sort(value: Any) -> Any:
    """Copy of `value` with every dict's keys sorted, recursively (lists keep their order)."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise MessageFormatError(f"tool schema keys must be strings: {list(value)!r}")
        return {k: deep_sort(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [deep_sort(v) for v in value]
    return value


def tools_ts_str(tools: list[Any]) -> str | None:
    """The TypeScript declaration of `tools`, or None where the template would use JSON."""
    try:
        return tools_to_typescript(deep_sort(tools)) or None
    except _ENCODE_ERRORS:
        return None


def tool_declaration(tools: list[Any]) -> str:
    """Body of the `tool_declare` message for a non-empty OpenAI-style `tools` list."""
    if not isinstance(tools, list | tuple):
        raise MessageFormatError(f"tools must be a list, got {type(tools).__name__}")
    sorted_tools = deep_sort(tools)
    declaration = tools_ts_str(sorted_tools)
    if declaration is not None:
        return declaration
    try:
        return json.dumps(sorted_tools, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise MessageFormatError(f"tools are not JSON-serializable: {e}") from e
