"""generate: prefill + cached decode reproduces uncached greedy decoding; stops and limits."""

from __future__ import annotations

import pytest
import torch

from openk2.model import KimiK2ForCausalLM, build_model, get_preset
from openk2.model.generate import generate, stream_generate


@pytest.fixture(scope="module")
def model() -> KimiK2ForCausalLM:
    return build_model(get_preset("debug").replace(initializer_range=0.1), seed=11).eval()


def _greedy_without_cache(model: KimiK2ForCausalLM, prompt: list[int], steps: int) -> list[int]:
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt) :]


def test_greedy_generation_matches_recomputing_everything(model: KimiK2ForCausalLM) -> None:
    prompt = [5, 17, 300, 42]
    produced = generate(model, prompt, max_new_tokens=8, stop_ids=())
    assert produced == _greedy_without_cache(model, prompt, 8)


def test_sampling_is_seeded(model: KimiK2ForCausalLM) -> None:
    def run(seed: int) -> list[int]:
        return generate(model, [1, 2], max_new_tokens=12, temperature=1.5, seed=seed, stop_ids=())

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_stops_after_a_stop_id(model: KimiK2ForCausalLM) -> None:
    free = generate(model, [9, 8, 7], max_new_tokens=6, stop_ids=())
    stopped = generate(model, [9, 8, 7], max_new_tokens=6, stop_ids={free[2]})
    assert stopped == free[: free.index(free[2]) + 1]
    assert list(stream_generate(model, [1], max_new_tokens=0)) == []


def test_bad_prompts_are_rejected(model: KimiK2ForCausalLM) -> None:
    with pytest.raises(ValueError, match="at least one"):
        generate(model, [], max_new_tokens=1)
    with pytest.raises(ValueError, match="vocabulary"):
        generate(model, [1, 512], max_new_tokens=1)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        generate(model, [1], max_new_tokens=5000)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, [1], max_new_tokens=-1)
