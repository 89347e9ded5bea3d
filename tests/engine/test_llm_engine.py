"""End-to-end engine behaviour on a toy model that really reads the paged cache."""

import pytest

from engine.fakes import ByteTokenizer, LatentToyLM, reference_greedy
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import ContextLengthError, LLMEngine
from openk2.engine.sampling_params import SamplingParams

GREEDY = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)


def engine(model: LatentToyLM | None = None, **kw: object) -> LLMEngine:
    cfg = {"block_size": 4, "num_blocks": 64, "max_num_seqs": 8, "max_num_batched_tokens": 16}
    cfg.update(kw)
    return LLMEngine(model or LatentToyLM(), ByteTokenizer(), EngineConfig(**cfg))  # type: ignore[arg-type]


PROMPTS = [list(range(40, 40 + n)) for n in (3, 17, 9, 30, 1, 12)]


@pytest.mark.parametrize(
    "kw",
    [
        {},  # plenty of pages, chunked prefill (budget 16)
        {"num_blocks": 12, "max_num_batched_tokens": 8},  # preemption + tiny chunks
        {"enable_prefix_caching": False, "max_num_seqs": 2},
    ],
)
def test_paged_batched_greedy_equals_full_recompute(kw: dict[str, object]) -> None:
    model = LatentToyLM()
    eng = engine(model, **kw)
    results = eng.generate(PROMPTS, GREEDY)
    for prompt, (out,) in zip(PROMPTS, results, strict=True):
        assert out.token_ids == reference_greedy(model, prompt, 12)
        assert out.finish_reason == "length"
    assert eng.block_manager.num_free_blocks == eng.block_manager.num_blocks
    if kw.get("num_blocks") == 12:
        assert eng.stats.preemptions > 0


def test_a_step_mixes_decode_rows_and_a_prefill_chunk() -> None:
    model = LatentToyLM()
    eng = engine(model, max_num_batched_tokens=8)
    eng.add_request([1, 2, 3], GREEDY)
    eng.step()
    eng.add_request(list(range(50, 70)), GREEDY)
    model.calls.clear()
    eng.step()
    assert model.calls == [(1, 1), (1, 7)]  # one decode row, one 7-token prefill chunk
    assert eng.stats.last_batch_size == 2 and eng.stats.last_batch_tokens == 8


def test_shared_system_prompt_and_n_choices_reuse_pages() -> None:
    model = LatentToyLM()
    eng = engine(model)
    system = list(range(60, 92))
    eng.generate([system + [1, 2]], GREEDY)
    (out,) = eng.generate([system + [5]], GREEDY)[0]
    assert eng.stats.prefix_hit_tokens >= 32
    assert out.token_ids == reference_greedy(model, system + [5], 12)
    params = SamplingParams(n=3, seed=11, max_tokens=6, ignore_eos=True)
    a = eng.generate([system + [7]], params)[0]
    b = engine(model, enable_prefix_caching=False).generate([system + [7]], params)[0]
    assert [c.token_ids for c in a] == [c.token_ids for c in b]  # seeded and cache-independent
    assert len({tuple(c.token_ids) for c in a}) == 3


def test_stop_ids_stop_strings_and_min_tokens() -> None:
    model = LatentToyLM()
    prompt = [10, 11, 12]
    free = reference_greedy(model, prompt, 12)
    eng = engine(model, enable_prefix_caching=False)
    (out,) = eng.generate(
        [prompt], SamplingParams(temperature=0.0, max_tokens=12, stop_token_ids=[free[3]])
    )[0]
    assert out.token_ids == free[: free.index(free[3]) + 1] and out.finish_reason == "stop"
    text = ByteTokenizer().decode(free)
    stop = text[2:4]
    (out,) = eng.generate(
        [prompt], SamplingParams(temperature=0.0, max_tokens=12, stop=[stop], ignore_eos=True)
    )[0]
    assert out.finish_reason == "stop" and out.text == text[: text.index(stop)]


def test_eos_stops_unless_ignored_and_min_tokens_delays_it() -> None:
    model = LatentToyLM()
    tok = ByteTokenizer()
    prompt = [5, 6]
    first = reference_greedy(model, prompt, 1)[0]
    eng = LLMEngine(model, _EosTokenizer(first), EngineConfig(block_size=4, num_blocks=32))
    (out,) = eng.generate([prompt], SamplingParams(temperature=0.0, max_tokens=5))[0]
    assert out.token_ids == [first] and out.finish_reason == "stop" and out.text == ""
    (out,) = eng.generate([prompt], SamplingParams(temperature=0.0, max_tokens=5, min_tokens=3))[0]
    assert len(out.token_ids) >= 3 and first not in out.token_ids[:3]
    del tok


class _EosTokenizer(ByteTokenizer):
    def __init__(self, eos: int) -> None:
        super().__init__()
        self._eos = eos

    @property
    def stop_ids(self) -> list[int]:
        return [self._eos]


def test_abort_frees_pages_at_once() -> None:
    eng = engine()
    rid = eng.add_request(list(range(30)), GREEDY)
    eng.step()
    assert eng.block_manager.num_used_blocks > 0
    assert eng.abort_request(rid)
    assert eng.block_manager.num_used_blocks == 0 and not eng.has_unfinished_requests()
    assert eng.stats.finished["abort"] == 1
    assert not eng.abort_request(rid)


def test_bad_prompts_are_refused_with_clear_errors() -> None:
    eng = engine(num_blocks=8, max_model_len=24)
    with pytest.raises(ContextLengthError, match="maximum context length is 24"):
        eng.add_request(list(range(20)), SamplingParams(max_tokens=10))
    with pytest.raises(ValueError, match="empty"):
        eng.add_request([], GREEDY)
    with pytest.raises(ValueError, match="out of range"):
        eng.add_request([1, 10_000], GREEDY)
    rid = eng.add_request([1, 2], SamplingParams(max_tokens=2))
    with pytest.raises(ValueError, match="already in use"):
        eng.add_request([1, 2], GREEDY, request_id=rid)
    assert eng.resolve_max_tokens(4, None) == 20


def test_logprobs_and_streaming_deltas_add_up() -> None:
    eng = engine()
    eng.add_request(
        [3, 4, 5], SamplingParams(temperature=0.0, max_tokens=5, ignore_eos=True, logprobs=2)
    )
    deltas = []
    while eng.has_unfinished_requests():
        deltas += eng.step()
    assert [len(d.token_ids) for d in deltas] == [1] * 5
    assert all(d.logprobs and d.logprobs[0].top[0][0] == d.token_ids[0] for d in deltas)
    assert deltas[-1].finished and not any(d.finished for d in deltas[:-1])
