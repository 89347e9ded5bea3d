"""Pydantic models of the OpenAI API subset openk2 serves (requests, responses, errors).

Unknown request fields are ignored, as OpenAI-compatible servers commonly do, so clients that
send newer options still work; fields we accept but cannot honour are rejected in `serving.py`
with a 400 that names them. K2.6 extensions: `thinking`, `chat_template_kwargs`,
`reasoning_content` (also read as `reasoning`), `top_k`, `min_tokens`, `ignore_eos`; vLLM's
structured-output fields (`structured_outputs`, `guided_*`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from openk2.engine.sampling_params import MAX_INDEX, MAX_STOP, MAX_TOP_LOGPROBS
from openk2.serve.error_text import describe
from openk2.serve.schema_shape import check_json_schema

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_TOOLS = 128
"""OpenAI's limit on `tools` per request."""
MAX_STOP_CHARS = 256
"""Longest stop string; the detokenizer holds back that much text before streaming it."""
MAX_LOGIT_BIAS = 1024
"""Entries in `logit_bias`; each one is applied to every sampled row."""
INT64 = 2**63
"""`seed` must fit a signed 64-bit integer (OpenAI's type), as generators take."""
Count = Annotated[int, Field(ge=1, le=MAX_INDEX)]
StopString = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


# ---- requests ------------------------------------------------------------------------------


class FunctionDefinition(_Request):
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_json_schema(value)


class ToolDefinition(_Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"] = "function"
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class FunctionCall(_Request):
    name: str
    arguments: str


class ToolCall(_Request):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(_Request):
    type: Literal["text"]
    text: str


class MediaURL(_Request):
    """`{"url": "data:...|https://...|file://...", "detail": ...}` (`detail` is accepted and
    ignored: K2.6 always reads an image at its native resolution, up to the patch limits)."""

    url: str
    detail: str | None = None


class MediaPart(_Request):
    """OpenAI `image_url`, vLLM / Kimi `video_url`; `input_audio` and `file` are parsed so the
    error can say why they are refused (`serve/media.py`)."""

    type: Literal["image_url", "input_audio", "video_url", "file"]
    image_url: MediaURL | str | None = None
    video_url: MediaURL | str | None = None


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | MediaPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class StreamOptions(_Request):
    include_usage: bool = False


class ThinkingOption(_Request):
    """K2.6 API: `{"type": "enabled"|"disabled", "keep": "all"}` (keep = preserve_thinking)."""

    type: Literal["enabled", "disabled"] = "enabled"
    keep: Literal["all"] | None = None


class JsonSchemaSpec(_Request):
    """`response_format.json_schema`: a named schema (what it means is up to chat_plan)."""

    name: Annotated[str, Field(pattern=FUNCTION_NAME)] | None = None
    description: str | None = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_json_schema(value)


class TextFormat(_Request):
    type: Literal["text"]


class JsonObjectFormat(_Request):
    type: Literal["json_object"]


class JsonSchemaFormat(_Request):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]
_RESPONSE_FORMAT: TypeAdapter[Any] = TypeAdapter(ResponseFormat)


class SamplingFields(_Request):
    """Fields shared by chat and text completions, bounded as OpenAI documents them (top_k,
    min_p, repetition_penalty and min_tokens as vLLM does), so every value that passes here
    can run in a batch without failing it."""

    model: str
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=-1, le=MAX_INDEX)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    repetition_penalty: Annotated[float, Field(gt=0.0, le=2.0)] = 1.0
    n: Annotated[int, Field(ge=1, le=16)] = 1
    max_tokens: Count | None = None
    min_tokens: Annotated[int, Field(ge=0, le=MAX_INDEX)] = 0
    stop: StopString | Annotated[list[StopString], Field(max_length=MAX_STOP)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: Annotated[int, Field(ge=-INT64, lt=INT64)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    logit_bias: (
        Annotated[
            dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]],
            Field(max_length=MAX_LOGIT_BIAS),
        ]
        | None
    ) = None
    ignore_eos: bool = False
    user: str | None = None
    # structured outputs (`serve/structured.py`): OpenAI's field, then vLLM's extra body fields
    response_format: dict[str, Any] | None = None
    structured_outputs: dict[str, Any] | None = None
    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None

    @field_validator("response_format")
    @classmethod
    def _valid_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            _RESPONSE_FORMAT.validate_python(value)
        except ValidationError as exc:  # locations start with the tag: drop it
            tag = value.get("type")
            errors = [{**e, "loc": e["loc"][e["loc"][:1] == (tag,) :]} for e in exc.errors()]
            raise ValueError(describe(errors)[1]) from None
        return value

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    tools: Annotated[list[ToolDefinition], Field(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_completion_tokens: Count | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    thinking: ThinkingOption | None = None
    chat_template_kwargs: dict[str, Any] | None = None


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: Count | None = 16
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: Annotated[int, Field(ge=1, le=16)] | None = None


# ---- responses -----------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobEntry(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobEntry] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatChoice]
    usage: Usage


class DeltaFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunction


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None

    def payload(self) -> dict[str, Any]:
        """Wire form: unset fields dropped, but every choice states its finish_reason."""
        body = self.model_dump(exclude_none=True)
        for choice in body["choices"]:
            choice.setdefault("finish_reason", None)
        return body


class CompletionLogprobs(BaseModel):
    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    top_logprobs: list[dict[str, float]] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str = "openk2"
    max_model_len: int | None = None
    parent: str | None = None
    """For a LoRA adapter, the base model it runs on (vLLM's field); None for the base."""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
