"""Text completions (`POST /v1/completions`): raw prompts, no chat template, no parsing.

A request may carry several prompts (strings or token-id lists); each runs as its own engine
request and its choices are numbered `prompt_index * n + choice_index`, as OpenAI does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from openk2.engine.outputs import RequestOutput
from openk2.engine.sampling_params import SamplingParams
from openk2.serve.chat_plan import check_length, constraint_grammar, sampling_params
from openk2.serve.errors import BadRequestError, UnavailableError, from_engine, in_stream
from openk2.serve.protocol import (
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    ErrorResponse,
    Usage,
)
from openk2.serve.sse import DONE, ClientDisconnected, event_stream, sse, unless_disconnected
from openk2.serve.state import ServerState
from openk2.serve.structured import requested_constraint

MAX_PROMPTS = 64


async def create_completion(state: ServerState, req: CompletionRequest, raw: Request) -> Response:
    """POST /v1/completions."""
    state.check_model(req.model)
    _check_unsupported(req)
    prompts = _prompt_ids(state, req)
    runs = [_plan(state, req, ids) for ids in prompts]
    if not state.engine.is_running:
        raise UnavailableError("The engine is not running; retry shortly.", retry_after_s=5)
    slot = state.limiter.acquire()
    request_id = f"cmpl-{uuid.uuid4().hex}"
    if req.stream:
        return event_stream(
            _stream(state, req, runs, request_id), slot, state.metrics.record_disconnect
        )
    try:
        body = await unless_disconnected(raw, _complete(state, req, runs, request_id))
    except ClientDisconnected:
        state.metrics.record_disconnect()
        return Response(status_code=499)
    finally:
        slot.release()
    return JSONResponse(body.model_dump(exclude_none=True))


Run = tuple[list[int], SamplingParams]
TEXT_DEFAULTS = (1.0, 1.0)
"""OpenAI's text-completion defaults: temperature 1, top_p 1."""


def _plan(state: ServerState, req: CompletionRequest, ids: list[int]) -> Run:
    max_tokens = check_length(state, len(ids), req.max_tokens, "prompt")
    params = sampling_params(
        state, req, TEXT_DEFAULTS, max_tokens, logprobs=req.logprobs, skip_special_tokens=True
    )
    constraint = requested_constraint(req)
    if constraint is not None:
        params.guide_factory = constraint_grammar(state, constraint, None).matcher
    return ids, params


def _check_unsupported(req: CompletionRequest) -> None:
    if req.suffix:
        raise BadRequestError("suffix is not supported", param="suffix")
    if req.best_of is not None and req.best_of != req.n:
        raise BadRequestError("best_of must equal n (no server-side ranking)", param="best_of")
    if req.echo and req.stream:
        raise BadRequestError("echo is not supported with stream", param="echo")


def _prompt_ids(state: ServerState, req: CompletionRequest) -> list[list[int]]:
    prompt = req.prompt
    if isinstance(prompt, str):
        prompts: list[list[int]] = [state.tokenizer.encode(prompt)]
    elif prompt and all(isinstance(p, int) for p in prompt):
        prompts = [list(prompt)]  # type: ignore[arg-type]
    elif prompt and all(isinstance(p, str) for p in prompt):
        prompts = [state.tokenizer.encode(p) for p in prompt]  # type: ignore[arg-type]
    else:
        prompts = [list(p) for p in prompt if isinstance(p, list)]
    if not prompts or any(not p for p in prompts) or len(prompts) > MAX_PROMPTS:
        raise BadRequestError(f"prompt must hold 1 to {MAX_PROMPTS} non-empty prompts",
                              param="prompt")  # fmt: skip
    vocab = state.tokenizer.vocab_size
    if any(not 0 <= t < vocab for p in prompts for t in p):
        raise BadRequestError(f"prompt token ids must be in [0, {vocab})", param="prompt")
    return prompts


async def _outputs(
    state: ServerState, runs: list[Run], request_id: str, n: int
) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Merge the runs' outputs as (global choice index, output), as they arrive."""
    queue: asyncio.Queue[tuple[int, RequestOutput] | BaseException | None] = asyncio.Queue()

    async def pump(k: int, ids: list[int], params: SamplingParams) -> None:
        try:
            stream = state.engine.generate(ids, params, f"{request_id}-{k}")
            async with aclosing(stream):
                async for out in stream:
                    await queue.put((k * n + out.index, out))
        except BaseException as exc:
            await queue.put(exc)
            raise
        await queue.put(None)

    tasks = [asyncio.create_task(pump(k, ids, p)) for k, (ids, p) in enumerate(runs)]
    # The pumps are cancelled in `finally`, which aborts their engine requests.
    try:
        for _ in range(len(runs)):
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise from_engine(item) from item
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _complete(
    state: ServerState, req: CompletionRequest, runs: list[Run], request_id: str
) -> Completion:
    size = len(runs) * req.n
    texts, reasons = [""] * size, [None] * size  # type: list[str], list[str | None]
    tokens, logprobs = [0] * size, [CompletionLogprobs() for _ in range(size)]
    async with aclosing(_outputs(state, runs, request_id, req.n)) as outputs:
        async for i, out in outputs:
            texts[i] += out.text
            tokens[i] = out.num_output_tokens
            if out.finished:
                reasons[i] = out.finish_reason
            if req.logprobs is not None:
                _add_logprobs(state, logprobs[i], out, len(texts[i]) - len(out.text))
    if req.echo:
        texts = [state.tokenizer.decode(runs[i // req.n][0]) + t for i, t in enumerate(texts)]
    choices = [
        CompletionChoice(index=i, text=texts[i], finish_reason=reasons[i],
                         logprobs=logprobs[i] if req.logprobs is not None else None)
        for i in range(size)
    ]  # fmt: skip
    return Completion(id=request_id, model=req.model, choices=choices, usage=_usage(runs, tokens))


async def _stream(
    state: ServerState, req: CompletionRequest, runs: list[Run], request_id: str
) -> AsyncIterator[str]:
    created = int(time.time())
    size = len(runs) * req.n
    tokens = [0] * size
    try:
        async with aclosing(_outputs(state, runs, request_id, req.n)) as outputs:
            async for i, out in outputs:
                tokens[i] = out.num_output_tokens
                lp = None
                if req.logprobs is not None:
                    lp = CompletionLogprobs()
                    _add_logprobs(state, lp, out, 0)
                choice = CompletionChoice(
                    index=i, text=out.text, finish_reason=out.finish_reason, logprobs=lp
                )
                yield sse(
                    Completion(id=request_id, created=created, model=req.model, choices=[choice])
                )
    except Exception as exc:  # the 200 is sent: the error ends this client's stream only
        yield sse(ErrorResponse(error=in_stream(exc).info()))
        yield DONE
        return
    if req.stream_options and req.stream_options.include_usage:
        usage = _usage(runs, tokens)
        yield sse(Completion(id=request_id, created=created, model=req.model, choices=[],
                             usage=usage))  # fmt: skip
    yield DONE


def _add_logprobs(
    state: ServerState, lp: CompletionLogprobs, out: RequestOutput, offset: int
) -> None:
    for entry in out.logprobs or []:
        text = state.tokenizer.decode([entry.token_id])
        lp.tokens.append(text)
        lp.token_logprobs.append(entry.logprob)
        lp.top_logprobs.append({state.tokenizer.decode([t]): v for t, v in entry.top})
        lp.text_offset.append(offset)
        offset += len(text)


def _usage(runs: list[Run], tokens: list[int]) -> Usage:
    prompt = sum(len(ids) for ids, _ in runs)
    completion = sum(tokens)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)  # fmt: skip
