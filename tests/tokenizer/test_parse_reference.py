"""openk2's K2 parser on the cases derived from vLLM's and SGLang's K2 parsing, in one piece,
in the cases' own chunks and character by character."""

import pytest

from openk2.tokenizer.parse import OutputParser, ParseResult, contains_marker

from .parse_reference_cases import CASES, Case, agrees


def run(case: Case, chunks: list[str]) -> ParseResult:
    parser = OutputParser(thinking=case.thinking,
                          tools=True if case.tools is None else case.tools)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()


def outcome(result: ParseResult) -> tuple[str | None, str | None, list[tuple[str, str, bool]]]:
    calls = [(c.name, c.arguments, c.malformed) for c in result.tool_calls]
    return result.content, result.reasoning_content, calls


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_case(case: Case) -> None:
    whole = run(case, [case.text])
    assert agrees(case, *outcome(whole)), outcome(whole)
    assert run(case, list(case.chunks)) == whole
    assert run(case, list(case.text)) == whole
    assert not contains_marker(whole.content or "")
    assert not contains_marker(whole.reasoning_content or "")


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
