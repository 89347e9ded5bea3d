"""From an OpenAI chat request to what the engine runs: prompt ids, sampling params, parser mode.

All request checks that need the tokenizer or the model live here, so every client mistake is a
400 (with the offending `param`) before any engine work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openk2.engine.grammar import Grammar, GrammarError
from openk2.engine.llm_engine import ContextLengthError
from openk2.engine.sampling_params import SamplingParamError, SamplingParams
from openk2.model.vision.processor import MediaItem
from openk2.serve import tool_choice as tc
from openk2.serve.errors import BadRequestError
from openk2.serve.media import LoadedMedia
from openk2.serve.prompt_media import encode_multimodal
from openk2.serve.protocol import ChatCompletionRequest, SamplingFields
from openk2.serve.state import ServerState
from openk2.serve.structured import USER_GRAMMAR, OutputConstraint, requested_constraint
from openk2.tokenizer.chat import encode_chat
from openk2.tokenizer.parse import ToolCatalog

THINKING_DEFAULTS = (1.0, 0.95)
"""K2.6 official sampling with thinking on: temperature 1.0, top_p 0.95."""
INSTANT_DEFAULTS = (0.6, 0.95)
"""K2.6 official sampling in instant mode (thinking off)."""
MAX_PARALLEL_FORCED_CALLS = 4
MAX_FORCED_REASONING = 128


@dataclass(slots=True)
class ChatPlan:
    """Everything derived from one chat request before generation starts."""

    prompt_ids: list[int]
    params: SamplingParams
    thinking: bool
    tools: ToolCatalog | None
    """The declared tools the output parser resolves calls against; None: tool calls are off."""
    include_usage: bool
    logprobs: bool
    media: list[MediaItem] = field(default_factory=list)
    """Encoder inputs (images, video chunks) in prompt order; their pads are in `prompt_ids`."""
    media_keys: list[bytes] = field(default_factory=list)
    """Their content hashes, in the same order."""


def message_dicts(req: ChatCompletionRequest) -> list[dict[str, Any]]:
    """The template's message dicts of a request (media parts kept as parts)."""
    return [_message_dict(m) for m in req.messages]


def build_chat_plan(
    state: ServerState, req: ChatCompletionRequest, media: list[LoadedMedia] | None = None
) -> ChatPlan:
    """Validate and translate a chat request; raises BadRequestError with the reason.

    `media`: the request's decoded image / video parts in order (`serve/media.py`); a
    multimodal model gets its placeholders expanded, a text-only model gets none."""
    state.check_model(req.model)
    messages = message_dicts(req)
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []]
    choice = _tool_choice(req)
    thinking, preserve = _thinking_mode(req)
    flags = dict(thinking=thinking, preserve_thinking=preserve)
    try:
        if state.multimodal:
            prompt_ids = encode_multimodal(state, messages, tools or None, media or [], flags)
        else:
            prompt_ids = encode_chat(state.tokenizer, messages, tools or None, **flags)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRequestError(f"Cannot render the conversation: {exc}", param="messages") from exc
    max_tokens = _max_tokens(state, req, len(prompt_ids))
    defaults = THINKING_DEFAULTS if thinking else INSTANT_DEFAULTS
    params = sampling_params(state, req, defaults, max_tokens)
    _constrain(state, req, params, messages, choice, thinking, max_tokens)
    return ChatPlan(
        prompt_ids=prompt_ids,
        params=params,
        thinking=thinking,
        tools=ToolCatalog.from_openai(tools) if tools and choice != "none" else None,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        logprobs=req.logprobs,
        media=[item for part in media or [] for item in part.items],
        media_keys=[key for part in media or [] for key in part.keys],
    )


def sampling_params(
    state: ServerState,
    req: SamplingFields,
    defaults: tuple[float, float],
    max_tokens: int,
    **extra: Any,
) -> SamplingParams:
    """SamplingParams from the request; `defaults` = (temperature, top_p) when it sets none."""
    temperature = state.generation_defaults.get("temperature", defaults[0])
    top_p = state.generation_defaults.get("top_p", defaults[1])
    try:
        return SamplingParams(
            temperature=temperature if req.temperature is None else req.temperature,
            top_p=top_p if req.top_p is None else req.top_p,
            top_k=max(req.top_k or 0, 0),  # vLLM's -1 also means "off"
            min_p=req.min_p,
            repetition_penalty=req.repetition_penalty,
            seed=req.seed,
            max_tokens=max_tokens,
            min_tokens=req.min_tokens,
            stop=req.stop_list,
            ignore_eos=req.ignore_eos,
            n=req.n,
            presence_penalty=req.presence_penalty,
            frequency_penalty=req.frequency_penalty,
            logit_bias=_logit_bias(state, req.logit_bias),
            adapter=state.adapter_for(req.model),
            **extra,
        )
    except SamplingParamError as exc:
        raise BadRequestError(str(exc), param=exc.param, code="invalid_value") from exc


def check_length(state: ServerState, prompt_len: int, max_tokens: int | None, param: str) -> int:
    """The output budget; a 400 that states the context limit when the request exceeds it."""
    try:
        return state.engine.engine.resolve_max_tokens(prompt_len, max_tokens)
    except ContextLengthError as exc:
        raise BadRequestError(str(exc), param=param, code="context_length_exceeded") from exc


def _max_tokens(state: ServerState, req: ChatCompletionRequest, prompt_len: int) -> int:
    wanted = req.max_completion_tokens or req.max_tokens
    return check_length(state, prompt_len, wanted, "messages")


def _message_dict(message: Any) -> dict[str, Any]:
    """The template's message dict (media parts were checked by `serving.request_media`)."""
    data = message.model_dump(exclude_none=True)
    if "reasoning" in data:
        data.setdefault("reasoning_content", data.pop("reasoning"))
    return data


def _tool_choice(req: ChatCompletionRequest) -> str:
    """'none' | 'auto' | 'required' | the forced function's name (validated against tools)."""
    choice = req.tool_choice
    names = [t.function.name for t in req.tools or []]
    if choice is None:
        return "auto" if names else "none"
    if isinstance(choice, str):
        if choice == "required" and not names:
            raise BadRequestError("tool_choice 'required' needs tools", param="tool_choice")
        return choice
    if choice.function.name not in names:
        raise BadRequestError(
            f"tool_choice names function {choice.function.name!r}, which is not in tools",
            param="tool_choice",
        )
    return f"function:{choice.function.name}"


def _thinking_mode(req: ChatCompletionRequest) -> tuple[bool, bool]:
    """(thinking, preserve_thinking) from `thinking` or `chat_template_kwargs` (default on)."""
    kwargs = req.chat_template_kwargs or {}
    thinking = kwargs.get("thinking", kwargs.get("enable_thinking", True))
    preserve = kwargs.get("preserve_thinking", False)
    if req.thinking is not None:
        thinking = req.thinking.type == "enabled"
        preserve = preserve or req.thinking.keep == "all"
    if not isinstance(thinking, bool) or not isinstance(preserve, bool):
        raise BadRequestError("thinking flags must be booleans", param="chat_template_kwargs")
    return thinking, preserve and thinking


def _logit_bias(state: ServerState, bias: dict[str, float] | None) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in (bias or {}).items():
        if not key.lstrip("-").isdigit() or not 0 <= int(key) < state.tokenizer.vocab_size:
            raise BadRequestError(f"logit_bias key {key!r} is not a token id", param="logit_bias")
        out[int(key)] = value
    return out


def _constrain(
    state: ServerState,
    req: ChatCompletionRequest,
    params: SamplingParams,
    messages: list[dict[str, Any]],
    choice: str,
    thinking: bool,
    max_tokens: int,
) -> None:
    """Logprobs, tool_choice and structured outputs: bans and the grammar on `params`."""
    if req.top_logprobs is not None and not req.logprobs:
        raise BadRequestError("top_logprobs requires logprobs=true", param="top_logprobs")
    params.logprobs = (req.top_logprobs or 0) if req.logprobs else None
    if choice == "none" and req.tools:
        params.banned_token_ids = [state.tokenizer.token_id(tc.SECTION_BEGIN)]
    budget = min(MAX_FORCED_REASONING, max_tokens // 4) if thinking else None
    if choice not in ("none", "auto"):
        text = tc.reply_grammar(tc.TOOL_SECTION, budget) + _tool_rules(req, messages, choice)
        params.guide_factory = compile_grammar(state, text, "tools").matcher
        return
    constraint = requested_constraint(req)
    if constraint is None:
        return
    tools = _tool_rules(req, messages, choice) if choice == "auto" else ""
    params.guide_factory = constraint_grammar(state, constraint, budget, tools).matcher


def constraint_grammar(
    state: ServerState, constraint: OutputConstraint, reasoning_budget: int | None,
    tool_rules: str = "",
) -> Grammar:  # fmt: skip
    """The compiled reply grammar for a structured-output constraint (400 if it cannot be);
    with `tool_rules` (tool_choice auto) the reply may be a tool-call section instead."""
    body = f"({constraint.body} | {tc.TOOL_SECTION})" if tool_rules else constraint.body
    text = tc.reply_grammar(body, reasoning_budget) + tool_rules
    nested = {USER_GRAMMAR: constraint.user_grammar} if constraint.user_grammar else None
    try:
        return state.grammars.compile(text, nested)
    except GrammarError as exc:
        param = "tools" if tool_rules and _is_tool_error(state, tool_rules) else constraint.param
        raise BadRequestError(f"Unsupported {param}: {exc}", param=param) from exc


def _is_tool_error(state: ServerState, tool_rules: str) -> bool:
    """Whether the tools alone fail to compile (so a 400 names `tools`, not the format)."""
    try:
        state.grammars.compile(tc.reply_grammar(tc.TOOL_SECTION, None) + tool_rules)
    except GrammarError:
        return True
    return False


def compile_grammar(
    state: ServerState, text: str, param: str, nested: dict[str, str] | None = None
) -> Grammar:
    """Compile (or fetch from the cache) at the door: a grammar that cannot be is a 400."""
    try:
        return state.grammars.compile(text, nested)
    except GrammarError as exc:
        raise BadRequestError(f"Unsupported {param}: {exc}", param=param) from exc


def _tool_rules(req: ChatCompletionRequest, messages: list[dict[str, Any]], choice: str) -> str:
    """The `tool_section` rules for the tools this request may call ("" when it has none)."""
    tools = [
        tc.ToolSpec(t.function.name, t.function.parameters or tc.EMPTY_OBJECT,
                    lenient=t.function.strict is not True)
        for t in req.tools or []
    ]  # fmt: skip
    if choice.startswith("function:"):
        tools = [t for t in tools if t.name == choice.removeprefix("function:")]
    if not tools:
        return ""
    forced_one = choice.startswith("function:") or req.parallel_tool_calls is False
    max_calls = 1 if forced_one else MAX_PARALLEL_FORCED_CALLS
    try:
        return tc.tool_section_rules(tools, tc.next_tool_call_index(messages), max_calls)
    except GrammarError as exc:
        raise BadRequestError(f"Unsupported tools: {exc}", param="tools") from exc
