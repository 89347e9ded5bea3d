"""Single-prompt generation with a contiguous latent cache: one prefill, then one token a step."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import torch

from openk2.model.model import KimiK2ForCausalLM
from openk2.model.sampling import sample


def stream_generate(
    model: KimiK2ForCausalLM,
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_ids: Collection[int] | None = None,
) -> Iterator[int]:
    """Yield new token ids as they are produced; stops after a stop id (yielded) or the limit.

    `stop_ids` None means the config's `eos_token_id`(s); pass `()` to never stop early.
    """
    _check_prompt(model, prompt_ids, max_new_tokens)
    stops = _stop_ids(model, stop_ids)
    device = model.anchor_weight.device
    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    cache = model.new_cache(1, len(prompt_ids) + max_new_tokens)
    tokens_1T = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits_1V = model(tokens_1T, cache=cache, logits_to_keep=1)[:, -1]
            next_1 = sample(
                logits_1V, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            token = int(next_1.item())
            yield token
            if token in stops:
                return
            tokens_1T = next_1.view(1, 1)


def generate(
    model: KimiK2ForCausalLM,
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_ids: Collection[int] | None = None,
) -> list[int]:
    """The new token ids (prompt excluded); see `stream_generate`."""
    return list(
        stream_generate(
            model,
            prompt_ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop_ids=stop_ids,
        )
    )


def _check_prompt(model: KimiK2ForCausalLM, prompt_ids: Sequence[int], max_new: int) -> None:
    config = model.config
    if not prompt_ids:
        raise ValueError("the prompt needs at least one token")
    if max_new < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new}")
    bad = [t for t in prompt_ids if not 0 <= t < config.vocab_size]
    if bad:
        raise ValueError(f"prompt ids outside the vocabulary [0, {config.vocab_size}): {bad[:5]}")
    if len(prompt_ids) + max_new > config.max_position_embeddings:
        raise ValueError(
            f"prompt ({len(prompt_ids)}) + max_new_tokens ({max_new}) exceeds the model's "
            f"max_position_embeddings ({config.max_position_embeddings})"
        )


def _stop_ids(model: KimiK2ForCausalLM, stop_ids: Collection[int] | None) -> frozenset[int]:
    if stop_ids is not None:
        return frozenset(stop_ids)
    eos = model.config.eos_token_id
    if eos is None:
        return frozenset()
    return frozenset(eos if isinstance(eos, list) else [eos])
