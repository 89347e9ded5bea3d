"""Chat completions: run a planned request on the engine, parse K2 output, answer or stream.

Reasoning and content stream live. Tool calls are held until generation ends and then sent
whole: the K2 parser only knows at `<|tool_call_end|>` which declared tool an unnamed call
means and whether the arguments are JSON. A call the model botched never becomes content (no
marker ever reaches a client). What it becomes is decided here, as vLLM and SGLang do: a call
with a function name (even an undeclared one, `unknown_tool`) is returned with its arguments
exactly as written, even when they are not valid JSON or were cut off, so the client's agent
can tell the model what to fix; a call the parser could not attribute to any tool is dropped.
Both are logged as warnings.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from openk2.engine.outputs import RequestOutput
from openk2.engine.sequence import TokenLogprob
from openk2.serve.chat_plan import ChatPlan, build_chat_plan, message_dicts
from openk2.serve.errors import BadRequestError, UnavailableError, from_engine, in_stream
from openk2.serve.media import LoadedMedia, check_count, load_part, media_parts
from openk2.serve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    DeltaFunction,
    DeltaMessage,
    DeltaToolCall,
    ErrorResponse,
    PromptTokensDetails,
    TokenLogprobEntry,
    ToolCall,
    TopLogprob,
    Usage,
)
from openk2.serve.sse import DONE, ClientDisconnected, event_stream, sse, unless_disconnected
from openk2.serve.state import ServerState
from openk2.tokenizer.parse import OutputParser

log = logging.getLogger(__name__)
TOOL_CALL_ERRORS = frozenset({
    "tools_disabled", "unknown_tool", "unresolved_tool_call", "malformed_tool_call",
    "missing_call_begin", "invalid_arguments", "unterminated_tool_call",
    "unterminated_tool_section",
})  # fmt: skip
"""Parser error kinds that mean the model botched a tool call (logged as warnings)."""


class ChoiceState:
    """Parser and counters of one choice while its tokens arrive."""

    def __init__(self, state: ServerState, plan: ChatPlan) -> None:
        self._state = state
        self._plan = plan
        self.parser = OutputParser(thinking=plan.thinking, tools=plan.tools or False)
        self.finish_reason: str | None = None
        self.output_tokens = 0
        self.cached_tokens = 0
        self.tool_calls: list[dict[str, Any]] = []

    def feed(self, out: RequestOutput) -> DeltaMessage:
        """Live reasoning/content of one engine step (tool-call pieces are held back)."""
        self.output_tokens = out.num_output_tokens
        self.cached_tokens = out.num_cached_tokens
        return _merge_deltas(self.parser.feed(out.text) if out.text else [])

    def finish(self, engine_reason: str | None) -> DeltaMessage:
        """Flush the parser; the tool calls (malformed ones with their raw arguments)."""
        result = self.parser.finish()
        delta = _merge_deltas(self.parser.final_deltas())
        for error in result.errors:
            level = logging.WARNING if error.kind in TOOL_CALL_ERRORS else logging.DEBUG
            log.log(level, "model output problem (%s): %s", error.kind, error.message)
        self.tool_calls = result.openai_tool_calls()
        if self.tool_calls:
            delta.tool_calls = [_tool_call_delta(i, c) for i, c in enumerate(self.tool_calls)]
        stopped = engine_reason == "stop"
        self.finish_reason = "tool_calls" if self.tool_calls and stopped else engine_reason
        return delta

    def logprobs(self, out: RequestOutput) -> ChoiceLogprobs | None:
        if not self._plan.logprobs or out.logprobs is None:
            return None
        return ChoiceLogprobs(content=[_logprob_entry(self._state, lp) for lp in out.logprobs])


async def create_chat_completion(
    state: ServerState, req: ChatCompletionRequest, raw: Request
) -> Response:
    """POST /v1/chat/completions."""
    plan = build_chat_plan(state, req, await request_media(state, req))
    _check_engine(state)
    slot = state.limiter.acquire()
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    if req.stream:
        return event_stream(
            _stream(state, req, plan, request_id), slot, state.metrics.record_disconnect
        )
    try:
        body = await unless_disconnected(raw, _complete(state, req, plan, request_id))
    except ClientDisconnected:
        state.metrics.record_disconnect()
        return Response(status_code=499)
    finally:
        slot.release()
    return JSONResponse(body.model_dump())


async def _complete(
    state: ServerState, req: ChatCompletionRequest, plan: ChatPlan, request_id: str
) -> ChatCompletion:
    choices = [ChoiceState(state, plan) for _ in range(req.n)]
    logprobs: list[list[TokenLogprobEntry]] = [[] for _ in range(req.n)]
    started = time.monotonic()
    async with aclosing(_generate(state, plan, request_id)) as outputs:
        async for out in outputs:
            if started:
                state.metrics.record_ttft(time.monotonic() - started)
                started = 0.0
            choice = choices[out.index]
            choice.feed(out)
            entries = choice.logprobs(out)
            if entries and entries.content:
                logprobs[out.index] += entries.content
            if out.finished:
                choice.finish(out.finish_reason)
    return ChatCompletion(
        id=request_id,
        model=req.model,
        choices=[_full_choice(i, c, plan, logprobs[i]) for i, c in enumerate(choices)],
        usage=_usage(plan, choices),
    )


async def _stream(
    state: ServerState, req: ChatCompletionRequest, plan: ChatPlan, request_id: str
) -> AsyncIterator[str]:
    choices = [ChoiceState(state, plan) for _ in range(req.n)]
    chunk = _chunker(request_id, req.model)
    for i in range(req.n):
        yield sse(chunk(i, DeltaMessage(role="assistant", content="")))
    started = time.monotonic()
    try:
        async with aclosing(_generate(state, plan, request_id)) as outputs:
            async for out in outputs:
                if started:
                    state.metrics.record_ttft(time.monotonic() - started)
                    started = 0.0
                for event in _step_events(choices[out.index], out, chunk):
                    yield event
    except Exception as exc:  # the 200 is sent: the error ends this client's stream only
        yield sse(ErrorResponse(error=in_stream(exc).info()))
        yield DONE
        return
    if plan.include_usage:
        usage = _usage(plan, choices)
        yield sse(ChatCompletionChunk(id=request_id, model=req.model, choices=[], usage=usage))
    yield DONE


def _step_events(choice: ChoiceState, out: RequestOutput, chunk: Any) -> list[str]:
    events = []
    delta = choice.feed(out)
    logprobs = choice.logprobs(out)
    if _has_content(delta) or logprobs is not None:
        events.append(sse(chunk(out.index, delta, logprobs=logprobs)))
    if out.finished:
        final = choice.finish(out.finish_reason)
        if _has_content(final):
            events.append(sse(chunk(out.index, final)))
        events.append(sse(chunk(out.index, DeltaMessage(), choice.finish_reason)))
    return events


async def _generate(
    state: ServerState, plan: ChatPlan, request_id: str
) -> AsyncIterator[RequestOutput]:
    """Engine outputs; engine failures become API errors (the request is already aborted)."""
    try:
        stream = state.engine.generate(
            plan.prompt_ids, plan.params, request_id, plan.media, plan.media_keys
        )
        async with aclosing(stream):
            async for out in stream:
                yield out
    except Exception as exc:
        raise from_engine(exc) from exc


async def request_media(state: ServerState, req: ChatCompletionRequest) -> list[LoadedMedia]:
    """The request's images and videos, decoded off the event loop; the cheap checks (audio,
    a text-only model, the item count) answer their 400 before anything is read."""
    refs = media_parts(message_dicts(req))
    if not refs:
        return []
    if not state.multimodal:
        raise BadRequestError(
            f"The served model `{state.model_name}` reads text only (it has no vision tower), "
            f"so it cannot take the {refs[0].kind} in part {refs[0].index}; remove image_url / "
            "video_url parts, or serve a K2.5 / K2.6 multimodal checkpoint.",
            param=refs[0].where, code="unsupported_content",
        )  # fmt: skip
    check_count(refs, state.media)
    return await asyncio.to_thread(lambda: [load_part(ref, state.media) for ref in refs])


def _check_engine(state: ServerState) -> None:
    if not state.engine.is_running:
        raise UnavailableError(
            "The engine is not running; retry shortly.", code="engine_unavailable", retry_after_s=5
        )


def _chunker(request_id: str, model: str) -> Any:
    created = int(time.time())

    def chunk(
        index: int,
        delta: DeltaMessage,
        finish_reason: str | None = None,
        logprobs: ChoiceLogprobs | None = None,
    ) -> ChatCompletionChunk:
        choice = ChunkChoice(
            index=index, delta=delta, finish_reason=finish_reason, logprobs=logprobs
        )
        return ChatCompletionChunk(id=request_id, created=created, model=model, choices=[choice])

    return chunk


def _merge_deltas(deltas: list[Any]) -> DeltaMessage:
    """One DeltaMessage from the parser's content and reasoning deltas of a step."""
    content = "".join(d.content for d in deltas if d.content is not None)
    reasoning = "".join(d.reasoning_content for d in deltas if d.reasoning_content is not None)
    return DeltaMessage(content=content or None, reasoning_content=reasoning or None)


def _has_content(delta: DeltaMessage) -> bool:
    return bool(delta.content or delta.reasoning_content or delta.tool_calls)


def _tool_call_delta(index: int, call: dict[str, Any]) -> DeltaToolCall:
    function = DeltaFunction(name=call["function"]["name"], arguments=call["function"]["arguments"])
    return DeltaToolCall(index=index, id=call["id"], type="function", function=function)


def _full_choice(
    index: int, choice: ChoiceState, plan: ChatPlan, logprobs: list[TokenLogprobEntry]
) -> ChatChoice:
    result = choice.parser.finish()
    tool_calls = [ToolCall.model_validate(c) for c in choice.tool_calls] or None
    message = AssistantMessage(  # content is null only beside tool calls, as OpenAI answers
        content=result.content if result.content is not None or tool_calls else "",
        reasoning_content=result.reasoning_content,
        tool_calls=tool_calls,
    )
    lp = ChoiceLogprobs(content=logprobs) if plan.logprobs else None
    return ChatChoice(index=index, message=message, finish_reason=choice.finish_reason, logprobs=lp)


def _usage(plan: ChatPlan, choices: list[ChoiceState]) -> Usage:
    completion = sum(c.output_tokens for c in choices)
    prompt = len(plan.prompt_ids)
    cached = max((c.cached_tokens for c in choices), default=0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )


def _logprob_entry(state: ServerState, lp: TokenLogprob) -> TokenLogprobEntry:
    token, raw = _token_text(state, lp.token_id)
    top = [TopLogprob(token=_token_text(state, t)[0], logprob=v, bytes=_token_text(state, t)[1])
           for t, v in lp.top]  # fmt: skip
    return TokenLogprobEntry(token=token, logprob=lp.logprob, bytes=raw, top_logprobs=top)


def _token_text(state: ServerState, token_id: int) -> tuple[str, list[int]]:
    text = state.tokenizer.decode([token_id])
    return text, list(text.encode("utf-8"))
