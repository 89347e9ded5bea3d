"""What the engine reports: per-step deltas of each sequence and a snapshot of its load."""

from __future__ import annotations

from dataclasses import dataclass, field

from openk2.engine.sequence import TokenLogprob


@dataclass(slots=True)
class RequestOutput:
    """New tokens and text of one sequence (choice `index` of `request_id`) from one step."""

    request_id: str
    index: int
    token_ids: list[int]
    text: str
    logprobs: list[TokenLogprob] | None
    finished: bool
    finish_reason: str | None
    num_prompt_tokens: int
    num_output_tokens: int
    num_cached_tokens: int = 0
    error: str | None = None
    """Why the sequence failed, when `finish_reason` is "error" (for that client only)."""


@dataclass(slots=True)
class EngineStats:
    """Counters and gauges for /metrics; a fresh copy is taken after every step."""

    num_running: int = 0
    num_waiting: int = 0
    num_blocks: int = 0
    num_used_blocks: int = 0
    block_size: int = 0
    last_batch_size: int = 0
    last_batch_tokens: int = 0
    steps: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    prefix_hit_tokens: int = 0
    prefix_query_tokens: int = 0
    preemptions: int = 0
    sequences_added: int = 0
    media_items: int = 0
    """Images and video chunks received (per request, not per choice)."""
    media_items_encoded: int = 0
    """Of those, the ones the vision tower ran for (the rest were encoder-cache hits)."""
    finished: dict[str, int] = field(default_factory=dict)

    @property
    def num_free_blocks(self) -> int:
        return self.num_blocks - self.num_used_blocks
