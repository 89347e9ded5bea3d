"""The request a suite asks for and the answer the runner hands back, as plain JSON data.

A `Call` is data (not provider objects) because it is hashed for the cache key, written to the
per-sample JSONL and replayed on resume; the answer is a dict of the same kind for the same
reasons. `raw` calls bypass the provider's parsing so that the preflight suite can read what
a chat client never sees: every one of `n` choices, `logprobs`, whether `[DONE]` arrived, the
exact status of a refused parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Answer = dict[str, Any]
"""`message` (OpenAI assistant message), `finish_reason`, `usage`, `latency_s`, `ttft_s`;
raw calls add `status`, `choices` (each with its `logprobs`) and, when streamed, `done`;
a failed call is `{"error": ...}` only."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Call:
    """One chat-completions request, endpoint-neutral (the model id is added per endpoint)."""

    messages: tuple[dict[str, Any], ...]
    """OpenAI `messages`."""
    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI `tools`."""
    params: dict[str, Any] = field(default_factory=dict)
    """Other body fields: temperature, max_tokens, tool_choice, stop, seed, n, logprobs..."""
    stream: bool = False
    """Send with `stream: true`."""
    raw: bool = False
    """Return the wire-level answer (all choices, logprobs, `[DONE]`, 4xx statuses)."""

    def to_json(self) -> dict[str, Any]:
        """The canonical form hashed for the cache and logged per sample."""
        return {"messages": list(self.messages), "tools": list(self.tools),
                "params": self.params, "stream": self.stream, "raw": self.raw}

    def body(self, model: str) -> dict[str, Any]:
        """The HTTP body of a raw call."""
        body: dict[str, Any] = {"model": model, "messages": list(self.messages),
                                **self.params, "stream": self.stream}
        if self.tools:
            body["tools"] = list(self.tools)
        if self.stream:
            body.setdefault("stream_options", {"include_usage": True})
        return body


def user_call(text: str, *, system: str | None = None, **params: Any) -> Call:
    """A one-turn call (temperature 0 unless given): what most suites send."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    params.setdefault("temperature", 0.0)
    return Call(messages=tuple(messages), params=params)


def answer_text(answer: Answer) -> str:
    """The visible text of an answer ('' for errors)."""
    return str((answer.get("message") or {}).get("content") or "")


def answer_tool_calls(answer: Answer) -> list[dict[str, Any]]:
    """The OpenAI `tool_calls` of an answer ([] for errors)."""
    return list((answer.get("message") or {}).get("tool_calls") or [])
