"""A sequence that cannot run fails alone: its neighbours produce the same tokens as without it."""

import asyncio

import pytest
import torch

from engine.fakes import ByteTokenizer, LatentToyLM
from openk2.engine.async_engine import AsyncLLMEngine, GenerationError
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.outputs import RequestOutput
from openk2.engine.sampling_params import SamplingParams

POISON_TOKEN = 299
"""A prompt holding this id makes `PoisonableLM`'s forward pass raise for the whole batch."""
PROMPTS = [list(range(40, 40 + n)) for n in (3, 17, 9, 30)]
NEIGHBOURS = [
    SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True),
    SamplingParams(temperature=0.9, top_p=0.8, seed=7, max_tokens=10, ignore_eos=True),
    SamplingParams(temperature=1.0, top_k=5, seed=3, max_tokens=10, ignore_eos=True, logprobs=2),
    SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True, presence_penalty=1.0),
]


class PoisonableLM(LatentToyLM):
    """The toy model, failing any forward call whose inputs contain POISON_TOKEN."""

    def forward(self, input_ids: torch.Tensor, *args: object, **kw: object) -> torch.Tensor:
        if bool((input_ids == POISON_TOKEN).any()):
            raise RuntimeError("poisoned batch")
        return super().forward(input_ids, *args, **kw)  # type: ignore[arg-type]


class RaisingGuide:
    """A guide that breaks on its `when`-th use: in sampling ("mask", while filling its token
    bitmask) or after it ("advance"); until then it allows every token."""

    def __init__(self, when: str, after: int = 2) -> None:
        self.when = when
        self.left = after

    def fill_bitmask(self, bitmask_W: torch.Tensor) -> None:
        if self.when == "mask" and self.left <= 0:
            raise RuntimeError("guide cannot follow its schema")
        bitmask_W.fill_(-1)  # every bit set: all tokens allowed

    def advance(self, token_id: int) -> None:
        self.left -= 1
        if self.when == "advance" and self.left < 0:
            raise ValueError(f"token {token_id} does not fit the guided text")


def engine(model: LatentToyLM | None = None) -> LLMEngine:
    cfg = EngineConfig(block_size=4, num_blocks=96, max_num_seqs=8, max_num_batched_tokens=24)
    return LLMEngine(model or PoisonableLM(), ByteTokenizer(), cfg)


Requests = list[tuple[list[int], SamplingParams]]


def run(eng: LLMEngine, requests: Requests) -> dict[str, RequestOutput]:
    """Run requests together; the merged output of each (choice 0) by request id."""
    ids = [eng.add_request(prompt, params, f"r{i}") for i, (prompt, params) in enumerate(requests)]
    merged = {rid: None for rid in ids}
    while eng.has_unfinished_requests():
        for delta in eng.step():
            acc = merged[delta.request_id]
            if acc is None:
                merged[delta.request_id] = delta
            else:
                acc.token_ids += delta.token_ids
                acc.finished, acc.finish_reason, acc.error = (
                    delta.finished, delta.finish_reason, delta.error
                )  # fmt: skip
    return merged  # type: ignore[return-value]


def alone() -> list[list[int]]:
    outs = run(engine(), list(zip(PROMPTS, NEIGHBOURS, strict=True)))
    return [outs[f"r{i}"].token_ids for i in range(len(PROMPTS))]


POISONS = {
    "forward": ([1, POISON_TOKEN, 2], SamplingParams(temperature=0.0, max_tokens=10)),
    "bias beyond vocab": ([5, 6], SamplingParams(temperature=1.0, logit_bias={5000: 1.0})),
    "guide in sampling": ([7, 8], SamplingParams(
        temperature=0.7, max_tokens=10, guide_factory=lambda: RaisingGuide("mask"))),
    "guide after sampling": ([9], SamplingParams(
        temperature=0.0, max_tokens=10, guide_factory=lambda: RaisingGuide("advance"))),
}  # fmt: skip


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_sequence_fails_alone(poison: str) -> None:
    expected = alone()
    eng = engine()
    requests = list(zip(PROMPTS, NEIGHBOURS, strict=True))
    requests.insert(1, POISONS[poison])  # the poisoned one runs in the same batches
    outs = run(eng, requests)
    bad = outs.pop("r1")
    assert bad.finished and bad.finish_reason == "error" and bad.error
    neighbours = [outs[f"r{i}"] for i in (0, 2, 3, 4)]
    assert [o.token_ids for o in neighbours] == expected
    assert all(o.finish_reason == "length" for o in neighbours)
    assert eng.block_manager.num_free_blocks == eng.block_manager.num_blocks
    assert eng.stats.finished["error"] == 1


def test_a_failing_forward_is_bisected_to_the_guilty_row() -> None:
    model = PoisonableLM()
    eng = engine(model)
    for i, prompt in enumerate([[1, 2], [3, POISON_TOKEN], [5], [6, 7]]):
        eng.add_request(prompt, SamplingParams(temperature=0.0, max_tokens=4), f"r{i}")
    outputs = eng.step()
    failed = [o.request_id for o in outputs if o.finish_reason == "error"]
    assert failed == ["r1"] and "poisoned batch" in (outputs[0].error or "")
    assert sorted(o.request_id for o in outputs if o.token_ids) == ["r0", "r2", "r3"]
    assert len(eng.scheduler.running) == 3


async def test_the_async_engine_fails_only_the_poisoned_stream() -> None:
    aengine = AsyncLLMEngine(engine())
    aengine.start()
    try:
        good = SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True)

        async def collect(prompt: list[int], params: SamplingParams, rid: str) -> list[int]:
            return [t async for out in aengine.generate(prompt, params, rid) for t in out.token_ids]

        tasks = [asyncio.create_task(collect(PROMPTS[i], good, f"g{i}")) for i in range(3)]
        with pytest.raises(GenerationError, match="fit the guided text"):
            await collect(*POISONS["guide after sampling"], "bad")
        results = await asyncio.gather(*tasks)
    finally:
        aengine.shutdown()
    ref = engine().generate(PROMPTS[:3], good)
    assert results == [choices[0].token_ids for choices in ref]
    assert aengine.num_step_errors == 0
