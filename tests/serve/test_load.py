"""Load: 64 concurrent streams (plus a few non-streaming calls) with random client disconnects.

The cache is deliberately small, so requests queue and get preempted. Afterwards every page must
be free and /metrics must agree with what the clients saw.
"""

import asyncio
import random

import httpx
from openai import AsyncOpenAI

from openk2.engine.config import EngineConfig
from openk2.serve.metrics import parse_metrics
from serve.live import LiveServer, serving

STREAMS = 64
SHORT_CALLS = 4
SMALL_CACHE = EngineConfig(
    max_model_len=512, max_num_seqs=24, max_num_batched_tokens=192, block_size=8, num_blocks=96
)


async def one_stream(client: AsyncOpenAI, rng: random.Random, i: int) -> tuple[str, int]:
    """('done', completion tokens) or ('left', chunks read before closing)."""
    leave_after = rng.randint(1, 12) if rng.random() < 0.4 else None
    stream = await client.chat.completions.create(
        model="debug",
        messages=[
            {"role": "user", "content": f"request {i}: " + "tell me more " * rng.randint(1, 30)}
        ],
        max_tokens=rng.randint(4, 40),
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True, "thinking": {"type": rng.choice(["enabled", "disabled"])}},
    )
    chunks = 0
    async for chunk in stream:
        chunks += 1
        if leave_after is not None and chunks >= leave_after:
            await stream.close()
            return "left", chunks
        if chunk.usage is not None:
            return "done", chunk.usage.completion_tokens
    raise AssertionError("stream ended without usage")


async def short_call(url: str) -> int:
    """A non-streaming call the client gives up on almost at once."""
    body = {"model": "debug", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 300, "ignore_eos": True}  # fmt: skip
    async with httpx.AsyncClient(timeout=0.3) as http:
        try:
            return (await http.post(url + "/v1/chat/completions", json=body)).status_code
        except httpx.TimeoutException:
            return 0


async def settled(live: LiveServer) -> dict[str, float]:
    """Metrics once the engine is idle and nothing is in flight."""
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            metrics = parse_metrics((await http.get(live.url + "/metrics")).text)
            busy = metrics["openk2_cache_pages_used"] + metrics["openk2_requests_in_flight"]
            if not busy and not metrics["openk2_num_requests_running"]:
                return metrics
            await asyncio.sleep(0.05)
    raise AssertionError(f"the server did not settle: {metrics}")


async def test_concurrent_streams_with_disconnects_free_every_page(debug_model: tuple) -> None:
    rng = random.Random(7)
    with serving(*debug_model, engine=SMALL_CACHE) as live:
        client = AsyncOpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0, timeout=120)
        results = await asyncio.gather(
            *(one_stream(client, rng, i) for i in range(STREAMS)),
            *(short_call(live.url) for _ in range(SHORT_CALLS)),
        )
        await client.close()
        metrics = await settled(live)
        engine = live.state.engine.engine
        assert engine.block_manager.num_free_blocks == engine.block_manager.num_blocks
        assert not engine.has_unfinished_requests()
    streams = results[:STREAMS]
    done = [n for kind, n in streams if kind == "done"]  # type: ignore[misc]
    left = [n for kind, n in streams if kind == "left"]  # type: ignore[misc]
    assert done and left
    assert metrics["openk2_cache_pages_free"] == SMALL_CACHE.num_blocks
    assert metrics["openk2_num_requests_waiting"] == 0
    finished = {k: v for k, v in metrics.items() if k.startswith("openk2_sequences_finished")}
    # Every queued sequence ended exactly once. A short call may time out before it is queued.
    added = metrics["openk2_sequences_added_total"]
    assert STREAMS <= added <= STREAMS + SHORT_CALLS
    assert sum(finished.values()) == added
    aborted = metrics.get('openk2_sequences_finished_total{reason="abort"}', 0)
    assert aborted <= metrics["openk2_client_disconnects_total"] <= len(left) + SHORT_CALLS
    assert metrics['openk2_requests_total{endpoint="/v1/chat/completions",status="200"}'] >= STREAMS
    assert metrics["openk2_generation_tokens_total"] >= sum(done)
    assert metrics["openk2_time_to_first_token_seconds_count"] >= len(done)
