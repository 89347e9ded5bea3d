"""The Kimi K2.6 chat template, rendered in Python with per-segment trainability.

Layout (no newlines between messages; every message ends with `<|im_end|>`):

    [<|im_system|>tool_declare<|im_middle|>{declaration}<|im_end|>]
    <|im_system|>system<|im_middle|>{content}<|im_end|>
    <|im_user|>user<|im_middle|>{content}<|im_end|>
    <|im_assistant|>assistant<|im_middle|><think>{reasoning}</think>{content}[tool calls]<|im_end|>
    <|im_system|>{name or "tool"}<|im_middle|>## Return of {tool_call_id}\\n{content}<|im_end|>
    <|im_assistant|>assistant<|im_middle|><think>      (generation prompt; instant: <think></think>)

The printed role is `name or role`; any role other than user/assistant uses `<|im_system|>`.
No default system prompt is inserted (K2.5 dropped K2's "You are Kimi..." default).

Thinking history: messages are split after the last assistant message *without* tool calls.
Assistant turns up to it render `<think></think>` (reasoning dropped); later ones (the current
agentic turn) keep `<think>{reasoning}</think>`, unless `thinking=False`, which empties them
all. `preserve_thinking=True` (K2.6) moves the split before the first message, so every
assistant turn keeps its reasoning. K2.6 reads `reasoning` and falls back to
`reasoning_content`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openk2.tokenizer import specials as sp
from openk2.tokenizer.chat.content import MessageFormatError, render_content
from openk2.tokenizer.chat.declare import tool_declaration

if TYPE_CHECKING:
    from openk2.tokenizer.tokenizer import Tokenizer

_ROLE_TOKENS = {"user": sp.IM_USER, "assistant": sp.IM_ASSISTANT}


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of rendered text; `trainable` marks assistant-generated text (the SFT loss mask)."""

    text: str
    trainable: bool


def render_chat_segments(
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    thinking: bool = True,
    preserve_thinking: bool = False,
    add_generation_prompt: bool = True,
) -> list[Segment]:
    """Render `messages` as segments; trainable exactly for assistant bodies incl. `<|im_end|>`."""
    messages = _check_messages(messages)
    segments = []
    if tools:
        segments.append(Segment(_wrap(sp.IM_SYSTEM, "tool_declare", tool_declaration(tools)),
                                False))
    split = -1 if preserve_thinking else _last_plain_assistant(messages)
    for index, message in enumerate(messages):
        keep_reasoning = thinking and index > split
        segments.extend(_render_message(message, index, keep_reasoning))
    if add_generation_prompt:
        think = sp.THINK_OPEN if thinking else sp.THINK_OPEN + sp.THINK_CLOSE
        segments.append(Segment(_header(sp.IM_ASSISTANT, "assistant") + think, False))
    return _merge(segments)


def render_chat(
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    thinking: bool = True,
    preserve_thinking: bool = False,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text exactly as the K2.6 template renders it."""
    segments = render_chat_segments(messages, tools, thinking=thinking,
                                    preserve_thinking=preserve_thinking,
                                    add_generation_prompt=add_generation_prompt)
    return "".join(s.text for s in segments)


def encode_chat(
    tokenizer: Tokenizer,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> list[int]:
    """Prompt ids: the rendered text encoded with specials parsed (as HF does)."""
    return tokenizer.encode(render_chat(messages, tools, **kwargs))


def encode_chat_with_mask(
    tokenizer: Tokenizer,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> tuple[list[int], list[bool]]:
    """Ids plus a per-id trainable mask for SFT (True on assistant-generated tokens).

    Segments are encoded one by one; every segment boundary sits next to a special token,
    which BPE never merges across, so the ids equal `encode_chat`'s. (The one exception is the
    real tokenizer's input splitting: a >25,000-character run, or a 400,000-character cut,
    crossing a boundary is cut at different places.)
    """
    ids: list[int] = []
    mask: list[bool] = []
    for segment in render_chat_segments(messages, tools, **kwargs):
        piece = tokenizer.encode(segment.text)
        ids.extend(piece)
        mask.extend([segment.trainable] * len(piece))
    return ids, mask


# ---- messages --------------------------------------------------------------------------------


def _check_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(messages, str | bytes | dict) or not isinstance(messages, Sequence):
        raise MessageFormatError("messages must be a list of message objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise MessageFormatError(f"messages[{i}] must be an object, got {message!r}")
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise MessageFormatError(f"messages[{i}] needs a non-empty string 'role'")
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise MessageFormatError(f"messages[{i}].name must be a string")
    return list(messages)


def _last_plain_assistant(messages: list[dict[str, Any]]) -> int:
    """Index of the last assistant message without tool calls (-1 if none)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "assistant" and not messages[index].get("tool_calls"):
            return index
    return -1


def _render_message(message: dict[str, Any], index: int, keep_reasoning: bool) -> list[Segment]:
    role = message["role"]
    where = f"messages[{index}]"
    header = _header(_ROLE_TOKENS.get(role, sp.IM_SYSTEM), message.get("name") or role)
    if role == "assistant":
        body = _assistant_body(message, where, keep_reasoning)
        return [Segment(header, False), Segment(body + sp.IM_END, True)]
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise MessageFormatError(f"{where} is a tool result without a 'tool_call_id'")
        body = f"## Return of {call_id}\n" + render_content(message.get("content"), where)
    else:
        body = render_content(message.get("content"), where)
    return [Segment(header + body + sp.IM_END, False)]


def _assistant_body(message: dict[str, Any], where: str, keep_reasoning: bool) -> str:
    reasoning = _reasoning(message, where)  # validated even where the template drops it
    reasoning = reasoning if keep_reasoning else ""
    text = f"{sp.THINK_OPEN}{reasoning}{sp.THINK_CLOSE}"
    text += render_content(message.get("content"), where)
    if message.get("tool_calls"):
        text += _tool_calls_section(message["tool_calls"], where)
    return text


def _reasoning(message: dict[str, Any], where: str) -> str:
    """K2.6 reads `reasoning`, falling back to `reasoning_content` (OpenAI-compatible name)."""
    for key in ("reasoning", "reasoning_content"):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            raise MessageFormatError(f"{where}.{key} must be a string")
        if value:
            return value
    return ""


def _tool_calls_section(calls: Any, where: str) -> str:
    if not isinstance(calls, list):
        raise MessageFormatError(f"{where}.tool_calls must be a list")
    rendered = "".join(_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(calls))
    return sp.TOOL_CALLS_SECTION_BEGIN + rendered + sp.TOOL_CALLS_SECTION_END


def _tool_call(call: Any, where: str) -> str:
    """`<|tool_call_begin|>{id}<|tool_call_argument_begin|>{arguments}<|tool_call_end|>`.

    The id is echoed exactly as given (K2 ids look like `functions.get_weather:0`); arguments
    given as an object are serialised like the template's `tojson` (default separators).
    """
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise MessageFormatError(f"{where} must be an object with a 'function' object")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise MessageFormatError(f"{where} has no 'id'; K2 expects ids like "
                                 "'functions.NAME:IDX', echoed back unchanged")
    arguments = call["function"].get("arguments", {})
    if not isinstance(arguments, str):
        try:
            arguments = json.dumps(arguments, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise MessageFormatError(f"{where}.function.arguments: {e}") from e
    return (f"{sp.TOOL_CALL_BEGIN}{call_id}{sp.TOOL_CALL_ARGUMENT_BEGIN}{arguments}"
            f"{sp.TOOL_CALL_END}")


# ---- text helpers ----------------------------------------------------------------------------


def _header(role_token: str, name: str) -> str:
    return f"{role_token}{name}{sp.IM_MIDDLE}"


def _wrap(role_token: str, name: str, body: str) -> str:
    return _header(role_token, name) + body + sp.IM_END


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbouring segments with the same trainability."""
    merged: list[Segment] = []
    for segment in segments:
        if merged and merged[-1].trainable == segment.trainable:
            merged[-1] = Segment(merged[-1].text + segment.text, segment.trainable)
        elif segment.text:
            merged.append(segment)
    return merged
