"""Typed tools: schema generation and model mistakes returned as fixable errors."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from openk2.agent.llm import ToolCall
from openk2.agent.tools import ModelRetry, ToolError, ToolOk, Toolset, tool


class AddParams(BaseModel):
    a: int = Field(description="first addend")
    b: int = Field(description="second addend")


@tool()
async def add(p: AddParams) -> str:
    """Add two integers."""
    return str(p.a + p.b)


@tool(name="fragile")
async def fragile_tool(p: AddParams) -> ToolOk:
    """Fails the way a model should learn from."""
    if p.b == 0:
        raise ModelRetry("b must not be 0; pick a positive b")
    if p.b < 0:
        raise RuntimeError("bug in the tool")
    return ToolOk("fine")


def _call(name: str, args: str) -> ToolCall:
    return ToolCall(id="functions.x:0", name=name, arguments=args)


def test_schema_comes_from_the_params_model() -> None:
    spec = Toolset([add]).specs()[0]
    assert spec.name == "add" and spec.description == "Add two integers."
    assert spec.parameters["required"] == ["a", "b"]
    assert spec.parameters["properties"]["a"] == {"description": "first addend", "type": "integer"}
    assert spec.to_openai()["type"] == "function"


async def test_valid_call_runs() -> None:
    assert await Toolset([add]).dispatch(_call("add", '{"a": 2, "b": 3}')) == ToolOk("5")


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("sub", "{}", "no tool named 'sub'. Call one of: add"),
        ("add", '{"a": 1,', "not valid JSON"),
        ("add", "[1, 2]", "must be a JSON object"),
        ("add", '{"a": "x", "b": 1}', "a: Input should be a valid integer"),
        ("add", '{"a": 1}', "b: Field required"),
    ],
)
async def test_model_mistakes_come_back_as_errors_that_say_how_to_fix(
    name: str, args: str, needle: str
) -> None:
    result = await Toolset([add]).dispatch(_call(name, args))
    assert isinstance(result, ToolError)
    assert needle in result.message
    assert result.output.startswith("ERROR: ")


async def test_model_retry_is_a_value_but_bugs_propagate() -> None:
    tools = Toolset([fragile_tool])
    retry = await tools.dispatch(_call("fragile", '{"a": 1, "b": 0}'))
    assert retry == ToolError("b must not be 0; pick a positive b", brief="retry")
    with pytest.raises(RuntimeError, match="bug in the tool"):
        await tools.dispatch(_call("fragile", '{"a": 1, "b": -1}'))


def test_toolset_rejects_duplicates_and_unknown_subsets() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Toolset([add, add])
    with pytest.raises(KeyError, match="unknown tools"):
        Toolset([add]).subset(["add", "nope"])
    assert Toolset([add, fragile_tool]).subset(["fragile"]).names == ["fragile"]


def test_function_tool_needs_one_model_argument() -> None:
    async def bad(x: int) -> str:
        return ""

    with pytest.raises(TypeError, match="one pydantic model"):
        tool()(bad)
