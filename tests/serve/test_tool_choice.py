"""Forced tool calls: whatever the model prefers, the K2 parser reads schema-valid calls back."""

import json

import jsonschema
import pytest

from engine.walks import walk
from openk2.engine.grammar import GrammarCompiler
from openk2.serve import tool_choice as tc
from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.parse import parse_output

TOOLS = [
    tc.ToolSpec("get_weather", {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "maxLength": 60},
        "unit": {"enum": ["c", "f"]},
        "when": {"type": "array", "maxItems": 9, "items": {"type": "integer", "maximum": 9}},
    }}),
    tc.ToolSpec("get", {"type": "object", "properties": {"q": {"type": ["string", "null"]}},
                        "additionalProperties": False}),
    tc.ToolSpec("noop", tc.EMPTY_OBJECT),
]  # fmt: skip
SCHEMAS = {t.name: t.parameters for t in TOOLS}


@pytest.fixture(scope="module")
def tok() -> object:
    return default_tokenizer()


@pytest.fixture(scope="module")
def compiler(tok: object) -> GrammarCompiler:
    return GrammarCompiler(tok)  # type: ignore[arg-type]


def calls_of(tok: object, ids: list[int], thinking: bool) -> list[dict]:
    assert ids[-1] in tok.stop_ids  # type: ignore[attr-defined]
    result = parse_output(tok.decode(ids[:-1]), thinking=thinking)  # type: ignore[attr-defined]
    assert not [e for e in result.errors if e.kind != "unterminated_reasoning"], result.errors
    return result.openai_tool_calls()


@pytest.mark.parametrize("seed", range(8))
def test_random_models_always_make_parseable_schema_valid_calls(
    tok: object, compiler: GrammarCompiler, seed: int
) -> None:
    thinking = seed % 2 == 0
    budget = 8 if thinking else None
    grammar = compiler.compile(tc.tool_call_grammar(TOOLS, 3, 3, budget))
    ids = walk(grammar.matcher(), tok, seed)
    calls = calls_of(tok, ids, thinking)
    assert 1 <= len(calls) <= 3
    for i, call in enumerate(calls):
        name = call["function"]["name"]
        assert call["id"] == f"functions.{name}:{3 + i}"
        jsonschema.validate(json.loads(call["function"]["arguments"]), SCHEMAS[name])
    if thinking:
        think_end = tok.token_id(tc.THINK_END)  # type: ignore[attr-defined]
        assert ids.index(think_end) <= budget  # reasoning ended within its budget


def test_several_calls_happen_when_allowed(tok: object, compiler: GrammarCompiler) -> None:
    grammar = compiler.compile(tc.tool_call_grammar(TOOLS, 0, 3, None))
    counts = {len(calls_of(tok, walk(grammar.matcher(), tok, seed), False)) for seed in range(24)}
    assert counts == {1, 2, 3}


def test_a_named_tool_is_the_only_one_called(tok: object, compiler: GrammarCompiler) -> None:
    grammar = compiler.compile(tc.tool_call_grammar(TOOLS[:1], 5, 1, None))
    for seed in range(4):
        (call,) = calls_of(tok, walk(grammar.matcher(), tok, seed), False)
        assert call["id"] == "functions.get_weather:5"


def test_reasoning_holds_no_special_tokens(tok: object, compiler: GrammarCompiler) -> None:
    grammar = compiler.compile(tc.reply_grammar('"ok"', 30))
    ids = walk(grammar.matcher(), tok, 0)
    think_end = ids.index(tok.token_id(tc.THINK_END))  # type: ignore[attr-defined]
    assert not any(tok.is_special(t) for t in ids[:think_end])  # type: ignore[attr-defined]
    assert tok.decode(ids[think_end + 1 : -1]) == "ok"  # type: ignore[attr-defined]


def test_bad_plans_and_the_call_counter() -> None:
    with pytest.raises(ValueError, match="at least one tool"):
        tc.tool_call_grammar([], 0, 1, None)
    with pytest.raises(ValueError, match="max_calls"):
        tc.tool_section_rules(TOOLS, 0, 0)
    history = [{"role": "assistant", "tool_calls": [{}, {}]}, {"role": "user"}]
    assert tc.next_tool_call_index(history) == 2
