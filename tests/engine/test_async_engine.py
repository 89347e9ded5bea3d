"""The background-thread engine: streaming, cancellation and shutdown."""

import asyncio

import pytest

from engine.fakes import ByteTokenizer, LatentToyLM
from openk2.engine.async_engine import AsyncLLMEngine, EngineDeadError
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.sampling_params import SamplingParams


@pytest.fixture
def aengine():
    eng = AsyncLLMEngine(
        LLMEngine(LatentToyLM(), ByteTokenizer(), EngineConfig(block_size=4, num_blocks=512))
    )
    eng.start()
    yield eng
    eng.shutdown()


async def collect(eng: AsyncLLMEngine, rid: str, params: SamplingParams) -> list:
    return [out async for out in eng.generate([1, 2, 3], params, rid)]


async def test_concurrent_streams_match_the_sync_engine(aengine: AsyncLLMEngine) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=6, ignore_eos=True, n=2)
    results = await asyncio.gather(*(collect(aengine, f"r{i}", params) for i in range(4)))
    ref = LLMEngine(LatentToyLM(), ByteTokenizer(), EngineConfig(block_size=4, num_blocks=512))
    (expected, _) = ref.generate([[1, 2, 3]], params)[0]
    for outs in results:
        assert sum(o.finished for o in outs) == 2
        tokens = [t for o in outs if o.index == 0 for t in o.token_ids]
        assert tokens == expected.token_ids


async def test_leaving_a_stream_early_frees_its_pages(aengine: AsyncLLMEngine) -> None:
    params = SamplingParams(max_tokens=500, ignore_eos=True)
    stream = aengine.generate(list(range(40)), params, "gone")
    async for _ in stream:
        break
    await stream.aclose()
    for _ in range(500):  # the abort lands before the engine's next step
        if not aengine.stats().num_used_blocks:
            break
        await asyncio.sleep(0.01)
    stats = aengine.stats()
    assert stats.num_used_blocks == 0 and stats.finished.get("abort") == 1


async def test_bad_requests_fail_only_themselves(aengine: AsyncLLMEngine) -> None:
    with pytest.raises(ValueError, match="empty"):
        async for _ in aengine.generate([], SamplingParams(max_tokens=2), "bad"):
            pass
    outs = await collect(aengine, "good", SamplingParams(max_tokens=2, ignore_eos=True))
    assert outs[-1].finished


async def test_a_stopped_engine_refuses_and_fails_pending(aengine: AsyncLLMEngine) -> None:
    stream = aengine.generate([1, 2], SamplingParams(max_tokens=1000, ignore_eos=True), "p")
    await stream.__anext__()
    aengine.shutdown()
    with pytest.raises(EngineDeadError):
        async for _ in stream:
            pass
    with pytest.raises(EngineDeadError):
        await collect(aengine, "late", SamplingParams(max_tokens=2))
