"""Pydantic errors as OpenAI states them: the field path, union branches joined."""

import pytest
from pydantic import ValidationError

from openk2.serve.error_text import describe, param_path
from openk2.serve.protocol import ChatCompletionRequest

USER = [{"role": "user", "content": "hi"}]


def errors_of(**body: object) -> list:
    with pytest.raises(ValidationError) as exc:
        ChatCompletionRequest.model_validate({"model": "m", "messages": USER, **body})
    return exc.value.errors()


def test_union_branches_are_not_params() -> None:
    assert param_path(("body", "stop", "constrained-str")) == "stop"
    assert param_path(("body", "messages", 0, "content", "str")) == "messages.0.content"
    assert param_path(("body",)) is None


def test_a_union_failure_joins_its_branches() -> None:
    param, message = describe(errors_of(stop=["a"] * 20))
    assert param == "stop"
    assert message.startswith("stop: ") and "at most 16 items" in message


def test_nested_schema_errors_name_the_field_once() -> None:
    param, message = describe(errors_of(response_format={"type": "json_schema",
                                                         "json_schema": "x"}))  # fmt: skip
    assert param == "response_format"
    assert message.startswith("response_format: json_schema: ") and "Value error" not in message
