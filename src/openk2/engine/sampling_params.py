"""Per-request sampling settings, validated once when a request enters the engine.

The server maps OpenAI request fields onto these; the engine never sees HTTP types. Invalid
values raise `ValueError` with a message that names the field, so the server can answer 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openk2.engine.guided import TokenGuide

MAX_TOP_LOGPROBS = 20
"""OpenAI caps `top_logprobs` at 20; so do we, which bounds the per-token work."""
MAX_STOP = 16
"""Stop strings per request; each one is searched for in every text delta."""
MAX_INDEX = 2**31 - 1
"""Bound of integer settings that become tensor values (top_k, token ids): past int64 they
overflow inside a batched step instead of failing on admission."""
GREEDY_BELOW = 1e-5
"""Temperatures under this are greedy: dividing float32 logits by a tinier one overflows to
inf/NaN, and the argmax is what such a temperature means anyway."""


@dataclass(kw_only=True, slots=True)
class SamplingParams:
    """How to pick tokens and when to stop, for every sequence of one request."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy (argmax)."""
    top_p: float = 1.0
    """Nucleus sampling: keep the smallest set of tokens whose probability mass reaches top_p."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 disables the filter."""
    min_p: float = 0.0
    """Drop tokens less likely than min_p times the most likely one; 0 disables the filter."""
    repetition_penalty: float = 1.0
    """Divides positive (multiplies negative) logits of tokens in the prompt or output; 1 = off."""
    seed: int | None = None
    """Seeds a private generator per sequence, so output does not depend on batch neighbours."""
    max_tokens: int | None = None
    """Generated-token limit; None means up to the engine's max_model_len."""
    min_tokens: int = 0
    """Stop ids are banned until this many tokens were generated."""
    stop: list[str] = field(default_factory=list)
    """Stop strings; the text is cut before the first occurrence (unless include_stop_str)."""
    stop_token_ids: list[int] = field(default_factory=list)
    """Extra stop ids, on top of the tokenizer's ([EOS] and <|im_end|>)."""
    ignore_eos: bool = False
    """Keep generating through the tokenizer's stop ids (benchmarks use this)."""
    include_stop_str_in_output: bool = False
    """Keep the matched stop string at the end of the text."""
    n: int = 1
    """Number of independent sequences (choices) for the request."""
    logprobs: int | None = None
    """None: no logprobs; k >= 0: the chosen token's logprob plus the k most likely alternatives."""
    skip_special_tokens: bool = False
    """Drop special tokens from the text (the chat server keeps them for its parsers)."""
    adapter: str | None = None
    """LoRA adapter the sequence runs with (`engine.lora.AdapterSet`; vLLM's `lora_request`);
    None: the base model."""
    presence_penalty: float = 0.0
    """Subtracted once from the logit of every token already generated (OpenAI semantics)."""
    frequency_penalty: float = 0.0
    """Subtracted per earlier occurrence of a token in the output."""
    logit_bias: dict[int, float] = field(default_factory=dict)
    """Added to the logits of the given token ids before sampling."""
    banned_token_ids: list[int] = field(default_factory=list)
    """Tokens that may never be sampled (the tool-call section marker under tool_choice=none)."""
    guide_factory: Callable[[], TokenGuide] | None = None
    """Builds one guide per sequence (`engine.grammar.Grammar.matcher`); None = unconstrained."""

    def __post_init__(self) -> None:
        _check(self.temperature >= 0.0, "temperature", "temperature must be >= 0")
        _check(0.0 < self.top_p <= 1.0, "top_p", "top_p must be in (0, 1]")
        _check(0 <= self.top_k <= MAX_INDEX, "top_k", f"top_k must be in [0, {MAX_INDEX}]")
        _check(0.0 <= self.min_p <= 1.0, "min_p", "min_p must be in [0, 1]")
        _check(
            0.0 < self.repetition_penalty <= 2.0,
            "repetition_penalty",
            "repetition_penalty must be in (0, 2]",
        )
        _check(self.max_tokens is None or self.max_tokens >= 1, "max_tokens", "max_tokens >= 1")
        _check(self.min_tokens >= 0, "min_tokens", "min_tokens must be >= 0")
        _check(
            self.max_tokens is None or self.min_tokens <= self.max_tokens,
            "min_tokens",
            "min_tokens must be <= max_tokens",
        )
        _check(1 <= self.n <= 128, "n", "n must be between 1 and 128")
        _check(
            self.logprobs is None or 0 <= self.logprobs <= MAX_TOP_LOGPROBS,
            "logprobs",
            f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}",
        )
        _check(all(isinstance(s, str) and s for s in self.stop), "stop", "stop strings non-empty")
        _check(len(self.stop) <= MAX_STOP, "stop", f"at most {MAX_STOP} stop strings")
        _check(-2.0 <= self.presence_penalty <= 2.0, "presence_penalty", "presence in [-2, 2]")
        _check(-2.0 <= self.frequency_penalty <= 2.0, "frequency_penalty", "frequency in [-2, 2]")
        _check(
            all(-100 <= b <= 100 for b in self.logit_bias.values()),
            "logit_bias",
            "logit_bias values must be in [-100, 100]",
        )
        _check(
            all(0 <= t <= MAX_INDEX for t in self.logit_bias),
            "logit_bias",
            "logit_bias keys must be token ids",
        )
        _check(
            all(0 <= t <= MAX_INDEX for t in self.stop_token_ids),
            "stop_token_ids",
            "stop_token_ids must be token ids",
        )

    @property
    def greedy(self) -> bool:
        """True when sampling reduces to argmax."""
        return self.temperature < GREEDY_BELOW


class SamplingParamError(ValueError):
    """An invalid setting; `param` names the field, so the server can answer a 400 naming it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise SamplingParamError(param, message)
