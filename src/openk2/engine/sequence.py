"""Request state: one `Sequence` per generated choice.

A request with `n > 1` becomes n sequences that share the prompt (and, through prefix caching,
its pages). A sequence tracks which of its tokens already have latents in the cache
(`num_computed_tokens`), so prefill can run in chunks and a preempted sequence can be recomputed.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING

import torch

from openk2.engine.sampling_params import SamplingParams

if TYPE_CHECKING:
    from openk2.engine.detokenizer import StopStringDetokenizer
    from openk2.engine.guided import TokenGuide
    from openk2.engine.media import MediaSpan

_seq_counter = count()


class SequenceStatus(enum.Enum):
    """Where a sequence is in its life: queued, in the running batch, or done."""

    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class FinishReason(enum.StrEnum):
    """Why a sequence ended; values match OpenAI's `finish_reason` where one exists."""

    STOP = "stop"
    LENGTH = "length"
    ABORT = "abort"
    ERROR = "error"
    """This sequence alone failed (sampling, guiding, detokenizing or its forward pass); its
    pages are freed and the rest of the batch keeps running."""


@dataclass(slots=True)
class TokenLogprob:
    """Logprob of a produced token and the most likely alternatives at that position."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


class Sequence:
    """One stream of tokens: the shared prompt plus this choice's output."""

    def __init__(
        self,
        request_id: str,
        index: int,
        prompt_token_ids: list[int],
        params: SamplingParams,
        max_tokens: int,
        arrival_time: float | None = None,
        media: tuple[MediaSpan, ...] = (),
    ) -> None:
        self.seq_id = next(_seq_counter)
        self.request_id = request_id
        self.index = index
        self.params = params
        self.max_tokens = max_tokens
        self.token_ids = list(prompt_token_ids)
        self.num_prompt_tokens = len(prompt_token_ids)
        self.media = media
        """Images / video chunks of the prompt and the pad positions they fill."""
        self.num_computed_tokens = 0
        self.num_cached_tokens = 0
        self.block_table: list[int] = []
        self.block_hashes: list[int] = []
        self.status = SequenceStatus.WAITING
        self.finish_reason: FinishReason | None = None
        self.arrival_time = time.monotonic() if arrival_time is None else arrival_time
        self.first_token_time: float | None = None
        self.num_preemptions = 0
        self.generator = _make_generator(params.seed, index)
        self.guide: TokenGuide | None = params.guide_factory() if params.guide_factory else None
        self.detokenizer: StopStringDetokenizer | None = None

    def __len__(self) -> int:
        return len(self.token_ids)

    def __repr__(self) -> str:
        return (
            f"Sequence(id={self.seq_id}, req={self.request_id!r}, len={len(self)}, "
            f"computed={self.num_computed_tokens}, status={self.status.value})"
        )

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def num_uncomputed_tokens(self) -> int:
        """Tokens whose latents are not in the cache yet (a prompt tail or the last sample)."""
        return len(self.token_ids) - self.num_computed_tokens

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    def append_token(self, token_id: int) -> None:
        """Record a generated token; its latent is computed by the next step."""
        if self.first_token_time is None:
            self.first_token_time = time.monotonic()
        self.token_ids.append(token_id)

    def reset_for_recompute(self) -> None:
        """Forget cache state after preemption: prompt and output are recomputed later."""
        self.num_computed_tokens = 0
        self.block_table = []
        self.block_hashes = []
        self.status = SequenceStatus.WAITING
        self.num_preemptions += 1


def _make_generator(seed: int | None, index: int) -> torch.Generator:
    """A private CPU generator: seeded choices differ by index yet repeat across runs."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed((seed * 1_000_003 + index) % (2**63))
    return generator
