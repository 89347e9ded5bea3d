"""Provider-neutral chat types: messages, tool calls, tool specs, usage, completions.

These are the only types a `ChatProvider` sees, so the HTTP provider, the scripted provider
and openk2's in-process provider all speak the same shapes. They map one-to-one onto the
OpenAI chat-completions wire format (`to_openai`/`from_openai`) because every server the agent
talks to (Kimi API, vLLM, SGLang, openk2's own) uses it. `reasoning_content` is carried on
assistant messages and sent back in history: K2 thinking mode rejects a history without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call requested by the model.

    `id` is opaque; K2 models emit `functions.NAME:IDX`, others `call_...`. `arguments` is the
    raw JSON text exactly as the model produced it (it may be invalid; the toolset reports
    that back to the model instead of failing).
    """

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        """The `tool_calls[i]` object of an assistant message."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> ToolCall:
        """Parse a complete `tool_calls[i]` object."""
        fn = data.get("function") or {}
        args = fn.get("arguments", "")
        if not isinstance(args, str):  # some servers send a parsed object
            args = json.dumps(args)
        return cls(id=str(data.get("id", "")), name=str(fn.get("name", "")), arguments=args)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message; fields that do not apply to a role stay at their defaults."""

    role: Role
    content: str = ""
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The message as an OpenAI chat-completions `messages[i]` object."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.role == "assistant":
            if self.reasoning_content is not None:
                out["reasoning_content"] = self.reasoning_content
            if self.tool_calls:
                out["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> Message:
        """Parse an OpenAI `messages[i]` or `choices[i].message` object."""
        role = data.get("role", "assistant")
        if role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"unknown message role {role!r}")
        reasoning = data.get("reasoning_content", data.get("reasoning"))
        return cls(
            role=role,
            content=_text_of(data.get("content")),
            reasoning_content=reasoning,
            tool_calls=tuple(ToolCall.from_openai(c) for c in data.get("tool_calls") or ()),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )


def _text_of(content: Any) -> str:
    """Flatten OpenAI content (a string, null, or a list of text parts) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def system(text: str) -> Message:
    """A system message."""
    return Message(role="system", content=text)


def user(text: str) -> Message:
    """A user message."""
    return Message(role="user", content=text)


def tool_result(call_id: str, text: str) -> Message:
    """The message that answers one tool call."""
    return Message(role="tool", content=text, tool_call_id=call_id)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: name, description, JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        """The `tools[i]` object of a request."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one or more calls; `cached_tokens` is the part of `prompt_tokens` hit."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        """Plain-dict form for JSON logs and summaries."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_openai(cls, data: dict[str, Any] | None) -> Usage:
        """Parse an OpenAI `usage` object (Kimi puts `cached_tokens` at the top level)."""
        if not data:
            return cls()
        details = data.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens", data.get("cached_tokens", 0)) or 0
        return cls(
            int(data.get("prompt_tokens") or 0),
            int(data.get("completion_tokens") or 0),
            int(cached),
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of one provider call: the assistant message and what it cost."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str = ""
