"""SFT line formats: OpenAI fine-tuning chats and ShareGPT, checked and normalised to one shape.

Every SFT line becomes `(messages, tools)` in OpenAI chat form, which the K2.6 template renders.
- OpenAI fine-tuning JSONL: `{"messages": [...], "tools": [...]}` with roles system, user,
  assistant, tool; assistant `tool_calls` (`{"id", "type": "function", "function": {"name",
  "arguments": JSON string}}`) answered by `tool` messages carrying that `tool_call_id`.
- ShareGPT: `{"conversations": [{"from": ..., "value": ...}], "system"?, "tools"?}` with `from`
  human/user, gpt/assistant, system, and the LLaMA-Factory tool turns `function_call` (value: a
  JSON call `{"name", "arguments"}` or a list of them) and `observation` (the tool's result).
The template already checks message shapes; this module adds what a fine-tuning set must also
satisfy (known roles, arguments that parse, calls to declared tools, results answering a call,
something to train on), so a bad line fails here with its field named rather than training on
garbage. Callers prefix the file and line.
"""

from __future__ import annotations

import json
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
_SHAREGPT_ROLES = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant",
    "assistant": "assistant", "function_call": "assistant", "observation": "tool",
    "tool": "tool",
}  # fmt: skip

Chat = tuple[list[dict[str, Any]], list[dict[str, Any]] | None]


def chat_from_line(obj: dict[str, Any]) -> Chat:
    """(messages, tools) of one SFT line in either format; ValueError names the bad field."""
    if "messages" in obj:
        messages, tools = obj["messages"], obj.get("tools")
    elif "conversations" in obj:
        messages, tools = sharegpt_to_openai(obj)
    else:
        raise ValueError(
            "SFT lines need 'messages' (OpenAI chat format) or 'conversations' (ShareGPT); "
            f"this one has {sorted(obj)} (a plain-text file has a 'text' on every line)"
        )
    if "functions" in obj or "function_call" in obj:
        raise ValueError("legacy 'functions'/'function_call' are not supported; use 'tools'")
    check_openai_chat(messages, tools)
    return messages, tools


def check_openai_chat(messages: Any, tools: Any) -> None:
    """The fine-tuning rules on an OpenAI-format chat (see the module docstring)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("SFT lines need a non-empty 'messages' list")
    declared = _tool_names(tools)
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object")
        _check_message(message, f"messages[{i}]", declared, open_calls)
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("the chat has no assistant message to train on")


def _tool_names(tools: Any) -> set[str] | None:
    """Names of the declared function tools (None: no `tools`, so calls are not checked)."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise ValueError("'tools' must be a list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name'}}}}")
        names.add(function["name"])
    return names


def _check_message(
    message: dict[str, Any], where: str, declared: set[str] | None, open_calls: set[str]
) -> None:
    role = message.get("role")
    if role not in ROLES:
        raise ValueError(f"{where}.role is {role!r}; expected one of {', '.join(ROLES)}")
    if message.get("weight", 1) not in (0, 1):
        raise ValueError(f"{where}.weight must be 0 or 1")
    if message.get("weight", 1) == 0:
        raise ValueError(f"{where}.weight 0 (skip this turn's loss) is not supported")
    if role == "assistant":
        if message.get("content") in (None, "") and not message.get("tool_calls"):
            raise ValueError(f"{where} is an assistant message with no content or tool_calls")
        for j, call in enumerate(message.get("tool_calls") or []):
            open_calls.add(_check_call(call, f"{where}.tool_calls[{j}]", declared))
    elif role == "tool":
        call_id = message.get("tool_call_id")
        if call_id not in open_calls:
            raise ValueError(f"{where}.tool_call_id {call_id!r} answers no earlier tool call")
    elif message.get("content") is None:
        raise ValueError(f"{where} ({role}) has no content")


def _check_call(call: Any, where: str, declared: set[str] | None) -> str:
    """Check one tool call and return its id."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValueError(f"{where} must be {{'id', 'type': 'function', 'function': {{'name'}}}}")
    if declared is not None and function["name"] not in declared:
        raise ValueError(f"{where} calls {function['name']!r}, which 'tools' does not declare")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}.function.arguments is not valid JSON ({exc.msg})") from exc
    if not isinstance(arguments, dict):
        raise ValueError(f"{where}.function.arguments must be a JSON object")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise ValueError(f"{where} needs a non-empty string 'id'")
    return call_id


def sharegpt_to_openai(obj: dict[str, Any]) -> Chat:
    """A ShareGPT line as OpenAI messages; tool turns get K2-style ids `functions.NAME:IDX`."""
    turns = obj["conversations"]
    if not isinstance(turns, list) or not turns:
        raise ValueError("'conversations' must be a non-empty list")
    messages: list[dict[str, Any]] = []
    if isinstance(obj.get("system"), str) and obj["system"]:
        messages.append({"role": "system", "content": obj["system"]})
    pending: list[str] = []  # ids of calls not yet answered, oldest first
    for i, turn in enumerate(turns):
        calls_so_far = sum(len(m.get("tool_calls", ())) for m in messages)
        messages.append(_sharegpt_turn(turn, f"conversations[{i}]", pending, calls_so_far))
    return messages, _sharegpt_tools(obj.get("tools"))


def _sharegpt_turn(turn: Any, where: str, pending: list[str], first: int) -> dict[str, Any]:
    if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
        raise ValueError(f"{where} must be an object with a string 'value'")
    kind = turn.get("from")
    if kind not in _SHAREGPT_ROLES:
        raise ValueError(f"{where}.from is {kind!r}; expected one of {', '.join(_SHAREGPT_ROLES)}")
    role, value = _SHAREGPT_ROLES[kind], turn["value"]
    if kind == "function_call":
        calls = _sharegpt_calls(value, where, first)
        pending.extend(call["id"] for call in calls)
        return {"role": "assistant", "content": "", "tool_calls": calls}
    if role == "tool":
        if not pending:
            raise ValueError(f"{where} is a tool result with no function_call before it")
        return {"role": "tool", "tool_call_id": pending.pop(0), "content": value}
    return {"role": role, "content": value}


def _sharegpt_calls(value: str, where: str, first: int) -> list[dict[str, Any]]:
    """`{"name", "arguments"}` (or a list of them) as OpenAI tool calls numbered from `first`."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}.value is not a JSON function call ({exc.msg})") from exc
    calls = parsed if isinstance(parsed, list) else [parsed]
    out = []
    for j, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ValueError(f"{where}.value[{j}] needs a string 'name'")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        function = {"name": call["name"], "arguments": arguments}
        out.append({"id": f"functions.{call['name']}:{first + j}", "type": "function",
                    "function": function})  # fmt: skip
    return out


def _sharegpt_tools(tools: Any) -> list[dict[str, Any]] | None:
    """ShareGPT `tools`: a JSON string or list of bare function specs, or OpenAI tool objects."""
    if tools in (None, "", []):
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise ValueError(f"'tools' is not valid JSON ({exc.msg})") from exc
    if not isinstance(tools, list):
        raise ValueError("'tools' must be a list of function specs")
    return [
        t if isinstance(t, dict) and "function" in t else {"type": "function", "function": t}
        for t in tools
    ]
