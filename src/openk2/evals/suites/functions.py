"""`functions`: BFCL-style categories scored by AST matching (simple, multiple, parallel,
irrelevance).

- simple: one tool offered, one call expected;
- multiple: all tools offered, the right one must be picked;
- parallel: one tool, a request that needs two or three calls of it (order-free);
- irrelevance: tools offered that cannot help; the right answer is no call at all.
"""

from __future__ import annotations

import random
from typing import Any

from openk2.evals.calls import Answer, Call, answer_tool_calls
from openk2.evals.suites import toolbank
from openk2.evals.suites.ast_match import calls_match
from openk2.evals.suites.base import Sample, Score, binary, failed_call

CATEGORIES = ("simple", "multiple", "parallel", "irrelevance")
_SYSTEM = "You are a helpful assistant. Call the tools when they can answer the request."


def _call(text: str, tools: list[dict[str, Any]]) -> Call:
    return Call(messages=({"role": "system", "content": _SYSTEM},
                          {"role": "user", "content": text}),
                tools=tuple(tools), params={"temperature": 0.0, "max_tokens": 512})


def _simple(rng: random.Random) -> tuple[Call, list[dict[str, Any]]]:
    name = rng.choice(list(toolbank.FAMILIES))
    text, ref = toolbank.FAMILIES[name](rng)
    return _call(text, [toolbank.TOOLS[name]]), [ref]


def _multiple(rng: random.Random) -> tuple[Call, list[dict[str, Any]]]:
    name = rng.choice(list(toolbank.FAMILIES))
    text, ref = toolbank.FAMILIES[name](rng)
    tools = list(toolbank.TOOLS.values())
    rng.shuffle(tools)
    return _call(text, tools), [ref]


def _parallel(rng: random.Random) -> tuple[Call, list[dict[str, Any]]]:
    cities = rng.sample(toolbank.CITIES, rng.randint(2, 3))
    refs = [{"name": "get_weather", "args": {"city": [c], "unit": ["", "celsius", "fahrenheit"]}}
            for c in cities]
    text = f"What is the weather in {', '.join(cities[:-1])} and {cities[-1]}? One call per city."
    return _call(text, [toolbank.TOOLS["get_weather"]]), refs


def _irrelevance(rng: random.Random) -> tuple[Call, list[dict[str, Any]]]:
    tools = rng.sample(list(toolbank.TOOLS.values()), 2)
    return _call(rng.choice(toolbank.IRRELEVANT), tools), []


_MAKERS = {"simple": _simple, "multiple": _multiple, "parallel": _parallel,
           "irrelevance": _irrelevance}


class FunctionsSuite:
    """BFCL non-live categories, AST-checked."""

    name = "functions"

    def samples(self, n: int, seed: int) -> list[Sample]:
        rng = random.Random(f"functions:{seed}")
        out = []
        for i in range(n):
            category = CATEGORIES[i % len(CATEGORIES)]
            call, refs = _MAKERS[category](rng)
            out.append(Sample(id=f"functions-{seed}-{i}", calls=(call,),
                              reference={"calls": refs}, meta={"category": category}))
        return out

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        error = failed_call(answers)
        if error:
            return binary(False, error=error)
        calls = answer_tool_calls(answers[0])
        names = [(c.get("function") or {}).get("name") for c in calls]
        return binary(calls_match(calls, sample.reference["calls"]), called=names)

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        refs = sample.reference["calls"]
        if not refs:
            return {"role": "assistant", "content": "None of the tools can help with that."}
        calls = [toolbank.ideal_call(r, i) for i, r in enumerate(refs)]
        return {"role": "assistant", "content": "", "tool_calls": calls}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        by: dict[str, list[bool]] = {}
        for row in rows:
            by.setdefault(row["meta"]["category"], []).append(row["passed"])
        return {"pass_rate_by_category": {k: sum(v) / len(v) for k, v in sorted(by.items())}}
