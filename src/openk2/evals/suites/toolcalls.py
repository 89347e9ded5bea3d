"""`tool-calls`: a K2-Vendor-Verifier-style check of an endpoint's tool calling.

Every sample is sent twice, non-streamed and streamed, at temperature 0, and judged on:
- finish_reason consistency: `tool_calls` exactly when the answer carries calls;
- schema accuracy: each emitted call names an offered tool and its arguments validate
  against that tool's JSON schema (K2VV's `jsonschema.validate` check);
- trigger: called when the reference calls and not otherwise (tool-call F1 over samples);
- the calls themselves (AST match against the reference, parallel calls order-free);
- `tool_choice` modes: auto, required, none and a named function;
- streaming vs non-streaming agreement (same calls, same finish reason).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import jsonschema

from openk2.evals.calls import Answer, Call, answer_tool_calls
from openk2.evals.suites import toolbank
from openk2.evals.suites.ast_match import calls_match, parse_arguments
from openk2.evals.suites.base import Sample, Score, failed_call

MODES = ("auto", "auto-none", "required", "none", "named", "parallel")
_SYSTEM = "You are a helpful assistant. Use the tools when they help."


def _make(rng: random.Random, mode: str) -> tuple[Call, list[dict[str, Any]], Any]:
    """The call, the reference calls and the tool_choice sent (None = not sent)."""
    name = rng.choice(list(toolbank.FAMILIES))
    text, ref = toolbank.FAMILIES[name](rng)
    tools = list(toolbank.TOOLS.values())
    rng.shuffle(tools)
    refs: list[dict[str, Any]] = [ref]
    choice: Any = None
    if mode == "auto-none":
        text, refs = rng.choice(toolbank.IRRELEVANT), []
    elif mode in ("required", "none"):
        choice = mode
        refs = [] if mode == "none" else refs
    elif mode == "named":
        choice = {"type": "function", "function": {"name": name}}
    elif mode == "parallel":
        cities = rng.sample(toolbank.CITIES, 2)
        text = f"Get the weather in {cities[0]} and in {cities[1]} (two calls)."
        refs = [{"name": "get_weather", "args": {"city": [c], "unit": ["", "celsius",
                                                                       "fahrenheit"]}}
                for c in cities]
    params: dict[str, Any] = {"temperature": 0.0, "max_tokens": 512}
    if choice is not None:
        params["tool_choice"] = choice
    call = Call(messages=({"role": "system", "content": _SYSTEM},
                          {"role": "user", "content": text}), tools=tuple(tools), params=params)
    return call, refs, choice


def schema_errors(calls: list[dict[str, Any]], tools: tuple[dict[str, Any], ...]) -> list[str]:
    """Why each invalid call is invalid (unknown tool, arguments not JSON, schema violation)."""
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    errors = []
    for call in calls:
        name = (call.get("function") or {}).get("name")
        args = parse_arguments(call)
        if name not in schemas:
            errors.append(f"unknown tool {name!r}")
        elif args is None:
            errors.append(f"{name}: arguments are not a JSON object")
        else:
            try:
                jsonschema.validate(args, schemas[name])
            except jsonschema.ValidationError as exc:
                errors.append(f"{name}: {exc.message}")
    return errors


def _signature(answer: Answer) -> tuple[Any, ...]:
    calls = answer_tool_calls(answer)
    parsed = [((c.get("function") or {}).get("name"), parse_arguments(c)) for c in calls]
    return answer.get("finish_reason"), sorted(repr(p) for p in parsed)


def _bucket(reason: Any) -> str:
    return reason if reason in ("stop", "tool_calls") else "others"


class ToolCallsSuite:
    """K2VV-style tool-call verification, streamed and not."""

    name = "tool-calls"

    def samples(self, n: int, seed: int) -> list[Sample]:
        rng = random.Random(f"tool-calls:{seed}")
        out = []
        for i in range(n):
            mode = MODES[i % len(MODES)]
            call, refs, choice = _make(rng, mode)
            streamed = dataclasses.replace(call, stream=True)
            out.append(Sample(id=f"tool-calls-{seed}-{i}", calls=(call, streamed),
                              reference={"calls": refs, "tool_choice": choice},
                              meta={"mode": mode}))
        return out

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        error = failed_call(answers)
        if error:
            return Score(passed=False, detail={"error": error})
        plain, streamed = answers
        calls = answer_tool_calls(plain)
        refs = sample.reference["calls"]
        reason = plain.get("finish_reason")
        detail = {
            "finish_reason": _bucket(reason),
            "finish_consistent": bool(calls) == (reason == "tool_calls"),
            "called": bool(calls), "expected_call": bool(refs),
            "schema_errors": schema_errors(calls, sample.calls[0].tools),
            "calls_match": calls_match(calls, refs),
            "stream_agrees": _signature(plain) == _signature(streamed),
        }
        checks = ("finish_consistent", "calls_match", "stream_agrees")
        passed = all(detail[c] for c in checks) and not detail["schema_errors"]
        return Score(passed=passed, score=float(passed), detail=detail)

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        refs = sample.reference["calls"]
        if not refs:
            return {"role": "assistant", "content": "I can answer that without tools."}
        calls = [toolbank.ideal_call(r, i) for i, r in enumerate(refs)]
        return {"role": "assistant", "content": "", "tool_calls": calls}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        judged = [r["detail"] for r in rows if "error" not in r["detail"]]
        if not judged:
            return {}
        tp = sum(d["called"] and d["expected_call"] for d in judged)
        fp = sum(d["called"] and not d["expected_call"] for d in judged)
        fn = sum(not d["called"] and d["expected_call"] for d in judged)
        with_calls = [d for d in judged if d["finish_reason"] == "tool_calls"]
        buckets = {b: sum(d["finish_reason"] == b for d in judged)
                   for b in ("stop", "tool_calls", "others")}
        return {
            "finish_reasons": buckets,
            "finish_consistency": _share(d["finish_consistent"] for d in judged),
            "schema_accuracy": _share(not d["schema_errors"] for d in with_calls),
            "tool_call_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
            "stream_agreement": _share(d["stream_agrees"] for d in judged),
            "pass_rate_by_mode": _by_mode(rows),
        }


def _share(flags: Any) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None


def _by_mode(rows: list[dict[str, Any]]) -> dict[str, float]:
    by: dict[str, list[bool]] = {}
    for row in rows:
        by.setdefault(row["meta"]["mode"], []).append(row["passed"])
    return {k: sum(v) / len(v) for k, v in sorted(by.items())}
