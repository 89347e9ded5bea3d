"""Engine sizing: batch limits, page geometry and how much memory the latent cache gets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(kw_only=True, slots=True)
class EngineConfig:
    """Knobs of the scheduler and the paged cache; validated on construction."""

    max_model_len: int | None = None
    """Longest sequence (prompt + output) accepted; None = the model's max_position_embeddings.
    Capped by that limit and by what the cache's memory holds."""
    max_num_seqs: int = 64
    """Most sequences in the running batch at once."""
    max_num_batched_tokens: int = 512
    """Token budget of one step: decode rows take 1 each, prefill chunks take the rest."""
    block_size: int = 16
    """Tokens per cache page."""
    num_blocks: int | None = None
    """Pages in the cache; None derives it from cache_memory_bytes."""
    cache_memory_bytes: int | None = None
    """Memory for the latent cache when num_blocks is None; None = room for one max_model_len
    request, at most half the free memory (`memory.py`)."""
    enable_prefix_caching: bool = True
    """Reuse computed pages of identical prefixes (system prompts, n > 1, multi-turn chats)."""
    packed_gemms: bool = True
    """On CPU, run the model's GEMMs on oneDNN-packed weight copies (`enable_packed_gemms`):
    1.3-2x faster batched steps for twice the weight memory."""
    encoder_cache_tokens: int = 16_384
    """Media embeddings (in LM tokens) kept by content hash, so an image is encoded once for all
    its prefill chunks and for later requests that repeat it (multimodal models only)."""

    def __post_init__(self) -> None:
        positive = {
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "block_size": self.block_size,
            "cache_memory_bytes": self.cache_memory_bytes,
            "encoder_cache_tokens": self.encoder_cache_tokens,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.num_blocks is not None and self.num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {self.num_blocks}")
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError("max_num_batched_tokens must be >= max_num_seqs (one token per row)")
