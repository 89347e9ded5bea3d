"""What every route shares: the engine, the tokenizer, served names, keys, limits and metrics."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from openk2.engine.async_engine import AsyncLLMEngine
from openk2.engine.grammar import GrammarCompiler
from openk2.serve.errors import AuthenticationError, NotFoundError, OverloadedError
from openk2.serve.media import MediaConfig
from openk2.serve.metrics import ServerMetrics


class Slot:
    """One admitted request; releasing twice is harmless (several exit paths may try)."""

    def __init__(self, limiter: ConcurrencyLimiter) -> None:
        self._limiter = limiter
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._limiter.in_flight -= 1


@dataclass
class ConcurrencyLimiter:
    """Caps requests in flight; beyond the cap the server answers 429 with Retry-After."""

    max_in_flight: int | None
    in_flight: int = 0
    retry_after_s: int = 1

    def acquire(self) -> Slot:
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            raise OverloadedError(
                f"The server is at its limit of {self.max_in_flight} concurrent requests; "
                f"retry after {self.retry_after_s}s.",
                code="too_many_requests",
                retry_after_s=self.retry_after_s,
            )
        self.in_flight += 1
        return Slot(self)


@dataclass
class ServerState:
    """Shared by every request handler of one app."""

    engine: AsyncLLMEngine
    tokenizer: Any
    served_model_names: list[str]
    """Names of the base model; requests may also name any of `adapter_names`."""
    adapter_names: list[str] = field(default_factory=list)
    """LoRA adapters served over the base (`--lora NAME=PATH`), picked by the `model` field."""
    api_keys: list[str] = field(default_factory=list)
    limiter: ConcurrencyLimiter = field(default_factory=lambda: ConcurrencyLimiter(None))
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    media: MediaConfig = field(default_factory=MediaConfig)
    """Image / video limits and sources (used only when the model is multimodal)."""
    generation_defaults: dict[str, float] = field(default_factory=dict)
    """The model's own sampling defaults (`temperature`, `top_p` from its generation_config.json,
    as vLLM's `--generation-config auto`): used where a request sets none, before K2.6's."""

    @property
    def model_name(self) -> str:
        return self.served_model_names[0]

    @property
    def multimodal(self) -> bool:
        """Whether the served model has a vision tower (takes image_url / video_url parts)."""
        return self.engine.engine.media_pad_id is not None

    @property
    def media_pad_id(self) -> int:
        pad_id = self.engine.engine.media_pad_id
        if pad_id is None:
            raise RuntimeError("the served model is text-only")
        return pad_id

    @property
    def max_model_len(self) -> int:
        return self.engine.engine.max_model_len

    @cached_property
    def grammars(self) -> GrammarCompiler:
        """Structured-output grammars for this tokenizer, built on first use (cached by text)."""
        return GrammarCompiler(self.tokenizer, self.engine.engine.vocab_size)

    @property
    def model_names(self) -> list[str]:
        """Every name `/v1/models` lists and a request may use: the base, then the adapters."""
        return [*self.served_model_names, *self.adapter_names]

    def check_model(self, name: str) -> None:
        if name not in self.model_names:
            raise NotFoundError(
                f"The model `{name}` does not exist; this server has: "
                f"{', '.join(self.model_names)}.",
                param="model",
                code="model_not_found",
            )

    def adapter_for(self, name: str) -> str | None:
        """The LoRA adapter a request's `model` selects (None: the base model)."""
        return name if name in self.adapter_names else None

    def check_api_key(self, authorization: str | None) -> None:
        """Accept `Authorization: Bearer KEY` for any configured key (constant-time compare)."""
        if not self.api_keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        ok = scheme.lower() == "bearer" and any(
            hmac.compare_digest(token.strip().encode(), key.encode()) for key in self.api_keys
        )
        if not ok:
            message = "Missing API key." if not authorization else "Incorrect API key provided."
            raise AuthenticationError(message, code="invalid_api_key")
