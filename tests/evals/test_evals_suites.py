"""Every suite: seeded, an ideal answer passes, a wrong one fails; AST-matching rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openk2.evals.suites import SUITE_NAMES, get_suite
from openk2.evals.suites.ast_match import call_matches, calls_match
from openk2.evals.suites.math import extract_integer


def _ideal_answers(suite: Any, sample: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(len(sample.calls)):
        message = suite.ideal(sample, i)
        reason = "tool_calls" if message.get("tool_calls") else "stop"
        out.append({"message": message, "finish_reason": reason, "usage": {}})
    return out


@pytest.mark.parametrize("name", [n for n in SUITE_NAMES if n != "preflight"])
def test_ideal_answers_pass_and_samples_are_seeded(name: str) -> None:
    suite = get_suite(name)
    samples = suite.samples(8, seed=3)
    assert [s.id for s in samples] == [s.id for s in suite.samples(8, seed=3)]
    assert [s.calls for s in samples] == [s.calls for s in suite.samples(8, seed=3)]
    assert [s.calls for s in samples] != [s.calls for s in suite.samples(8, seed=4)]
    for sample in samples:
        verdict = suite.score(sample, _ideal_answers(suite, sample))
        assert verdict.passed, (sample.id, verdict.detail)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_endpoint_errors_fail_the_sample(name: str) -> None:
    suite = get_suite(name)
    sample = suite.samples(2, seed=0)[0]
    verdict = suite.score(sample, [{"error": "HTTP 500"}] * len(sample.calls))
    assert not verdict.passed and "error" in verdict.detail


def test_math_wrong_number_fails() -> None:
    suite = get_suite("math")
    sample = suite.samples(1, 0)[0]
    wrong = {"message": {"content": f"ANSWER: {sample.reference['answer'] + 1}"}}
    assert not suite.score(sample, [wrong]).passed
    assert extract_integer("so 3 + 4 = 7\nANSWER: 1,234") == 1234
    assert extract_integer("it is 12 then 15") == 15
    assert extract_integer("no number") is None


def _call(name: str, **args: Any) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": json.dumps(args)}}


def test_ast_match_rules() -> None:
    ref = {"name": "f", "args": {"city": ["San Diego"], "unit": ["", "celsius"], "n": [2.0]}}
    assert call_matches(_call("f", city="san-diego", n=2), ref)  # normalised, int for float
    assert call_matches(_call("f", city="San Diego", unit="Celsius", n=2.0), ref)
    assert not call_matches(_call("f", city="San Diego"), ref)  # required n missing
    assert not call_matches(_call("f", city="San Diego", n=2, extra=1), ref)  # unknown param
    assert not call_matches(_call("g", city="San Diego", n=2), ref)
    assert not call_matches({"function": {"name": "f", "arguments": "{bad"}}, ref)
    a, b = ({"name": "w", "args": {"c": [c]}} for c in ("Oslo", "Lima"))
    assert calls_match([_call("w", c="Lima"), _call("w", c="Oslo")], [a, b])  # order-free
    assert not calls_match([_call("w", c="Lima")], [a, b])


def test_tool_calls_flags_schema_errors_and_stream_disagreement() -> None:
    suite = get_suite("tool-calls")
    sample = next(s for s in suite.samples(6, 0) if s.meta["mode"] == "named")
    good = _ideal_answers(suite, sample)
    bad_args = json.loads(json.dumps(good))
    bad_args[0]["message"]["tool_calls"][0]["function"]["arguments"] = "{\"city\": 3"
    verdict = suite.score(sample, bad_args)
    assert not verdict.passed and verdict.detail["schema_errors"]
    assert not verdict.detail["stream_agrees"]
    no_call = [{"message": {"content": "no"}, "finish_reason": "tool_calls"}] * 2
    assert suite.score(sample, no_call).detail["finish_consistent"] is False


def test_code_runs_hidden_tests_in_a_subprocess_with_a_timeout() -> None:
    from openk2.evals.suites.code import run_tests

    cases = [[[2, 3], 5], [[0, 0], 0]]
    assert run_tests("def add(a, b):\n    return a + b\n", "add", cases)[0]
    ok, why = run_tests("def add(a, b):\n    return a - b\n", "add", cases)
    assert not ok and "AssertionError" in why
    ok, why = run_tests("def add(a, b):\n    while True: pass\n", "add", cases, timeout_s=0.5)
    assert not ok and "timed out" in why


def test_horizon_reads_paths_and_scores_steps() -> None:
    suite = get_suite("horizon")
    sample = next(s for s in suite.samples(7, 0) if s.meta["steps"] == 4)
    path = sample.reference["path"]
    text = "\n".join([path[0], path[1], "wrong", path[3]]) + f"\nFINAL: {path[3]}"
    verdict = suite.score(sample, [{"message": {"content": text}}])
    assert verdict.passed and verdict.score == 0.75
    assert verdict.detail["correct_steps"] == [True, True, False, True]


def test_niah_needs_the_asked_code_not_a_distractor() -> None:
    suite = get_suite("niah")
    sample = suite.samples(1, 0)[0]
    prompt = sample.calls[0].messages[-1]["content"]
    assert prompt.count("The secret code for") == 3
    others = [w.strip(".") for w in prompt.split() if w.strip(".").isdigit()
              and w.strip(".") != sample.reference["code"]]
    assert not suite.score(sample, [{"message": {"content": others[0]}}]).passed
