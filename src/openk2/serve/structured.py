"""Structured outputs: which grammar a request asks its reply to follow, as a Lark rule body.

OpenAI's `response_format`:
- `{"type": "text"}`: free text (no constraint);
- `{"type": "json_object"}`: any JSON object;
- `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`: JSON matching `schema`.
  With `strict: true` a keyword the engine cannot enforce is a 400; without it such keywords
  are ignored (the rest is still enforced).

vLLM's extra body fields, under the names vLLM uses (at most one constraint per request):
- `structured_outputs: {"json" | "regex" | "choice" | "grammar" | "json_object": ...}` (vLLM
  >= 0.10.2);
- the older `guided_json`, `guided_regex`, `guided_choice`, `guided_grammar`.
`grammar` is Lark in llguidance's dialect (vLLM's `guidance` backend) or GBNF (converted).
Every constraint becomes a Lark rule body; `chat_plan.py` wraps it with reasoning and compiles it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openk2.engine.grammar import GrammarError, json_rule, regex_terminal, string_literal
from openk2.serve.errors import BadRequestError
from openk2.serve.protocol import SamplingFields

ANY_OBJECT: dict[str, Any] = {"type": "object"}
LEGACY_FIELDS = {"guided_json": "json", "guided_regex": "regex", "guided_choice": "choice",
                 "guided_grammar": "grammar"}  # fmt: skip
STRUCTURED_KINDS = ("json", "regex", "choice", "grammar", "json_object")
USER_GRAMMAR = "user"
"""Name under which a request's own grammar is nested in the reply grammar."""


@dataclass(frozen=True, slots=True)
class OutputConstraint:
    """A reply constraint: a Lark rule body, plus the user's own grammar for `grammar`."""

    body: str
    param: str
    """The request field it came from (named in a 400 when it does not compile)."""
    user_grammar: str | None = None
    """A complete Lark/GBNF grammar, referenced from `body` as `@user`."""


def requested_constraint(req: SamplingFields) -> OutputConstraint | None:
    """The one constraint the request sets (None for free text); 400 on a malformed one."""
    found = [c for c in (_from_response_format(req.response_format), *_vllm_constraints(req)) if c]
    if len(found) > 1:
        params = ", ".join(c.param for c in found)
        raise BadRequestError(f"Set only one structured-output constraint; got {params}.",
                              param=found[1].param)  # fmt: skip
    return found[0] if found else None


def _from_response_format(fmt: dict[str, Any] | None) -> OutputConstraint | None:
    if fmt is None:
        return None
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return _rule(lambda: json_rule(ANY_OBJECT), "response_format")
    spec = fmt.get("json_schema")
    if (
        kind != "json_schema"
        or not isinstance(spec, dict)
        or not isinstance(spec.get("schema", {}), dict)
    ):
        raise BadRequestError(
            "response_format must be {'type': 'text'}, {'type': 'json_object'} or "
            "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}",
            param="response_format",
        )
    schema = spec.get("schema") or ANY_OBJECT
    lenient = spec.get("strict") is not True
    return _rule(lambda: json_rule(schema, lenient=lenient), "response_format")


def _vllm_constraints(req: SamplingFields) -> list[OutputConstraint]:
    out = []
    for field, kind in LEGACY_FIELDS.items():
        value = getattr(req, field)
        if value is not None:
            out.append(_structured(kind, value, field))
    so = req.structured_outputs
    if so is not None:
        kinds = [k for k in STRUCTURED_KINDS if so.get(k) not in (None, False)]
        if len(kinds) != 1:
            raise BadRequestError(
                f"structured_outputs must set exactly one of {', '.join(STRUCTURED_KINDS)}",
                param="structured_outputs",
            )
        out.append(_structured(kinds[0], so[kinds[0]], f"structured_outputs.{kinds[0]}"))
    return out


def _structured(kind: str, value: Any, param: str) -> OutputConstraint:
    if kind == "json_object":
        return _rule(lambda: json_rule(ANY_OBJECT), param)
    if kind == "json":
        return _rule(lambda: json_rule(_schema_value(value, param)), param)
    if kind == "regex":
        return _rule(lambda: regex_terminal(value), param)
    if kind == "choice":
        return _rule(lambda: _choice_rule(value), param)
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError("grammar must be a non-empty Lark or GBNF text", param=param)
    return OutputConstraint(f"@{USER_GRAMMAR}", param, user_grammar=value)


def _schema_value(value: Any, param: str) -> dict[str, Any]:
    """A schema given as an object or as JSON text (vLLM accepts both)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise BadRequestError(f"the JSON schema is not valid JSON: {exc}", param=param) from exc
    if not isinstance(value, dict):
        raise BadRequestError("the JSON schema must be an object", param=param)
    return value


def _choice_rule(options: Any) -> str:
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise GrammarError("choice must be a non-empty list of strings")
    return "(" + " | ".join(string_literal(o) for o in options) + ")"


def _rule(build: Callable[[], str], param: str) -> OutputConstraint:
    """Run a rule builder, turning its GrammarError into a 400 naming `param`."""
    try:
        return OutputConstraint(build(), param)
    except GrammarError as exc:
        raise BadRequestError(f"Invalid {param}: {exc}", param=param) from exc
