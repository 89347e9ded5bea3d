"""Grammar compilation and per-sequence matchers (llguidance) on the bundled tokenizer.

Random walks stand in for a model: at each step they pick among the tokens the matcher allows,
so whatever they pick, the finished text must parse and validate against the schema.
"""

import json
import re

import jsonschema
import pytest
import torch

from engine.walks import reply, walk
from openk2.engine.grammar import (
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    json_rule,
    regex_terminal,
)
from openk2.engine.guided import allowed_tokens
from openk2.tokenizer import default_tokenizer

# Each of these broke a cap of the old hand-written matcher (strings <= 48 characters, arrays
# <= 6 items) or a keyword it did not support (numeric bounds, patterns, $ref, oneOf).
CAPPED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "tags", "kind", "where", "code", "score", "pick"],
    "properties": {
        "name": {"type": "string", "minLength": 60, "maxLength": 80},
        "tags": {"type": "array", "minItems": 8, "maxItems": 10,
                 "items": {"type": "string", "maxLength": 4}},
        "kind": {"anyOf": [{"enum": ["alpha", "beta"]},
                           {"type": "integer", "minimum": 10, "maximum": 99}]},
        "where": {"$ref": "#/$defs/point"},
        "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "pick": {"oneOf": [{"type": "boolean"}, {"type": "null"}]},
    },
    "$defs": {"point": {"type": "object", "additionalProperties": False, "required": ["lat"],
                        "properties": {"lat": {"type": "integer", "minimum": -90, "maximum": 90},
                                       "label": {"type": "string", "maxLength": 8}}}},
}  # fmt: skip


@pytest.fixture(scope="module")
def tok() -> object:
    return default_tokenizer()


@pytest.fixture(scope="module")
def compiler(tok: object) -> GrammarCompiler:
    return GrammarCompiler(tok)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_uncapped_schemas_always_give_valid_json(tok: object, compiler: GrammarCompiler,
                                                 seed: int) -> None:  # fmt: skip
    value = json.loads(reply(tok, walk(compiler.json_schema(CAPPED).matcher(), tok, seed)))
    jsonschema.validate(value, CAPPED)
    assert len(value["name"]) >= 60 and len(value["tags"]) >= 8


@pytest.mark.parametrize("seed", range(4))
def test_json_object_is_any_object(tok: object, compiler: GrammarCompiler, seed: int) -> None:
    text = reply(tok, walk(compiler.json_schema({"type": "object"}).matcher(), tok, seed))
    assert isinstance(json.loads(text), dict)
    outside_strings = re.sub(r'"(\\.|[^"\\])*"', "", text)
    assert not re.search(r"\s", outside_strings)  # compact JSON


def test_special_tokens_are_tokens_not_text(tok: object, compiler: GrammarCompiler) -> None:
    grammar = compiler.compile('start: <|tool_call_begin|> "x" <|tool_call_end|>')
    matcher = grammar.matcher()
    begin = tok.token_id("<|tool_call_begin|>")  # type: ignore[attr-defined]
    allowed = allowed_tokens([matcher], tok.vocab_size)[0]  # type: ignore[attr-defined]
    assert allowed.nonzero().flatten().tolist() == [begin]  # never "<", "|", ... spelled out
    assert not matcher.done
    ids = walk(matcher, tok, 0)
    assert reply(tok, ids) == "<|tool_call_begin|>x<|tool_call_end|>"
    assert matcher.done  # nothing may follow but a stop token


def test_regex_choice_and_gbnf(tok: object, compiler: GrammarCompiler) -> None:
    pattern = regex_terminal(r"^[A-Z]{3}-\d{4}$")
    code = reply(tok, walk(compiler.compile(f"start: {pattern}").matcher(), tok, 1))
    assert re.fullmatch(r"[A-Z]{3}-\d{4}", code)
    gbnf = 'root ::= "yes" | "no"'
    grammar = compiler.compile("start: @user", {"user": gbnf})
    assert reply(tok, walk(grammar.matcher(), tok, 2)) in ("yes", "no")


def test_grammars_are_compiled_once_per_text(tok: object, compiler: GrammarCompiler) -> None:
    first = compiler.json_schema({"type": "integer"})
    assert compiler.json_schema({"type": "integer"}) is first
    a, b = first.matcher(), first.matcher()
    a.advance(tok.encode("7")[0])  # type: ignore[attr-defined]
    assert not torch.equal(_mask(a), _mask(b))  # matchers are independent copies


def _mask(matcher: GrammarMatcher) -> torch.Tensor:
    return allowed_tokens([matcher], 8192)[0]


@pytest.mark.parametrize(
    ("lark", "reason"),
    [
        ('start: %json {"type": "date"}', "Invalid type: date"),
        ('start: %json {"type": "integer", "minimum": 5, "maximum": 3}', "Unsatisfiable"),
        ('start: %json {"type": "string", "pattern": "(?=a)b"}', "look-around"),
        ('start: %json {"type": "object", "not": {}}', "Unimplemented keys"),
        ("start: <|no_such_token|>", "unknown special token"),
        ("start: /a(/", "unclosed group"),
    ],
)
def test_bad_grammars_raise_with_the_reason(compiler: GrammarCompiler, lark: str,
                                            reason: str) -> None:  # fmt: skip
    with pytest.raises(GrammarError, match=re.escape(reason)):
        compiler.compile(lark)


def test_lenient_schemas_ignore_what_cannot_be_enforced(compiler: GrammarCompiler) -> None:
    schema = {"type": "object", "not": {"type": "null"}}
    with pytest.raises(GrammarError):
        compiler.compile(f"start: {json_rule(schema)}")
    compiler.compile(f"start: {json_rule(schema, lenient=True)}")
    with pytest.raises(GrammarError, match="must be an object"):
        json_rule([])  # type: ignore[arg-type]


def test_a_rejected_token_ends_the_guide(tok: object, compiler: GrammarCompiler) -> None:
    matcher = compiler.json_schema({"type": "integer"}).matcher()
    matcher.advance(tok.encode("x")[0])  # type: ignore[attr-defined]
    assert matcher.failed and matcher.done
    allowed = _mask(matcher).nonzero().flatten().tolist()
    assert allowed == sorted(tok.stop_ids)  # type: ignore[attr-defined]
