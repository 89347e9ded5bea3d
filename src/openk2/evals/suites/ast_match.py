"""BFCL-style AST matching of emitted tool calls against references.

A call matches when the function name is right, every required parameter is present, no
unknown parameter appears, and each value is one of the parameter's acceptable answers
(`""` in the list = may be omitted). Strings compare after BFCL's normalisation (lower case,
whitespace and `,./-_*^` dropped); an integer is accepted where a float is expected.
Parallel calls match order-free.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

_STRIP = re.compile(r"[\s,./\-_*^]")


def normalise(value: Any) -> Any:
    """BFCL's `standardize_string` for strings; numbers and the rest unchanged."""
    if isinstance(value, str):
        return _STRIP.sub("", value.lower())
    return value


def _same(value: Any, accepted: Any) -> bool:
    if isinstance(accepted, bool) or isinstance(value, bool):
        return value is accepted
    if isinstance(accepted, int | float) and isinstance(value, int | float):
        return float(value) == float(accepted)
    return normalise(value) == normalise(accepted)


def parse_arguments(call: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments as a dict, or None when they are not a JSON object."""
    raw = (call.get("function") or {}).get("arguments")
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except (json.JSONDecodeError, TypeError):
        return None
    return args if isinstance(args, dict) else None


def call_matches(call: dict[str, Any], ref: dict[str, Any]) -> bool:
    """Does one emitted OpenAI tool call match one reference?"""
    if (call.get("function") or {}).get("name") != ref["name"]:
        return False
    args = parse_arguments(call)
    if args is None or set(args) - set(ref["args"]):
        return False
    for param, accepted in ref["args"].items():
        if param not in args:
            if "" not in accepted:
                return False
        elif not any(_same(args[param], a) for a in accepted if a != ""):
            return False
    return True


def calls_match(calls: list[dict[str, Any]], refs: list[dict[str, Any]]) -> bool:
    """Do the emitted calls match the references one-to-one, in any order?"""
    if len(calls) != len(refs):
        return False
    return any(all(call_matches(c, r) for c, r in zip(perm, refs, strict=True))
               for perm in itertools.permutations(calls))
