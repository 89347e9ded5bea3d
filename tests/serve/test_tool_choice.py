"""Forced tool calls: whatever the model prefers, the K2 parser reads valid calls back."""

import json
import random

import pytest

from openk2.engine.guided import TokenTable
from openk2.serve import tool_choice as tc
from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.parse import parse_output

TOOLS = (
    ("get_weather", {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 12},
        "unit": {"enum": ["c", "f"]},
        "when": {"type": "array", "items": {"type": "integer"}},
    }}),
    ("get", {"type": "object", "properties": {"q": {"type": ["string", "null"]}}}),
    ("noop", tc.EMPTY_OBJECT),
)  # fmt: skip


@pytest.fixture(scope="module")
def plan_parts() -> tuple[object, dict[str, int], TokenTable]:
    tok = default_tokenizer()
    table = TokenTable.build(tok.vocab_size, tok.token_bytes, tok.is_special)
    return tok, tc.marker_ids(tok.token_id), table


def drive(guide: object, rng: random.Random, vocab: int, markers: list[int]) -> list[int]:
    """A 'model' that proposes random tokens and markers; the guide decides what is taken."""
    out: list[int] = []
    for _ in range(2000):
        if guide.done:  # type: ignore[attr-defined]
            return out
        token = guide.forced_token()  # type: ignore[attr-defined]
        if token is None:
            tries = [rng.randrange(vocab) for _ in range(300)] + markers
            rng.shuffle(tries)
            token = next((t for t in tries if guide.accepts(t)), guide.fallback_token())  # type: ignore[attr-defined]
        guide.advance(token)  # type: ignore[attr-defined]
        out.append(token)
    raise AssertionError("the guide did not finish")


@pytest.mark.parametrize("seed", range(12))
def test_random_proposals_always_yield_parseable_calls(plan_parts: tuple, seed: int) -> None:
    tok, ids, table = plan_parts
    rng = random.Random(seed)
    thinking = seed % 2 == 0
    plan = tc.GuidePlan(
        ids, table, reasoning_budget=8 if thinking else None,
        banned_in_reasoning=frozenset(ids[m] for m in tc.TOOL_MARKERS), tools=TOOLS,
        first_index=3, max_calls=3,
    )  # fmt: skip
    out = drive(tc.ToolCallGuide(plan), rng, tok.vocab_size, list(ids.values()))
    assert out[-1] == tok.im_end_id
    result = parse_output(tok.decode(out[:-1]), thinking=thinking)
    assert not [e for e in result.errors if e.kind != "unterminated_reasoning"], result.errors
    assert 1 <= len(result.tool_calls) <= 3
    for i, call in enumerate(result.openai_tool_calls()):
        name = call["function"]["name"]
        assert call["id"] == f"functions.{name}:{3 + i}"
        args = json.loads(call["function"]["arguments"])
        assert set(args) == set(dict(TOOLS)[name].get("properties", {}))


def test_several_calls_happen_when_allowed(plan_parts: tuple) -> None:
    tok, ids, table = plan_parts
    counts = set()
    for seed in range(30):
        plan = tc.GuidePlan(ids, table, tools=TOOLS, max_calls=3)
        out = drive(tc.ToolCallGuide(plan), random.Random(seed), tok.vocab_size, list(ids.values()))
        counts.add(len(parse_output(tok.decode(out[:-1]), thinking=False).tool_calls))
    assert counts == {1, 2, 3}


def test_json_reply_guide_and_errors(plan_parts: tuple) -> None:
    tok, ids, table = plan_parts
    schema = dict(TOOLS)["get_weather"]
    plan = tc.GuidePlan(ids, table)
    out = drive(tc.json_reply_guide(plan, schema), random.Random(1), tok.vocab_size, [])
    assert set(json.loads(tok.decode(out[:-1]))) == {"city", "unit", "when"}
    with pytest.raises(ValueError, match="at least one tool"):
        tc.ToolCallGuide(plan)
    assert (
        tc.next_tool_call_index([{"role": "assistant", "tool_calls": [{}, {}]}, {"role": "user"}])
        == 2
    )
