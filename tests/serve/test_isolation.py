"""A request whose sequence fails inside the engine gets an error; every other stream goes on."""

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest
import torch
from openai import AsyncOpenAI

from openk2.serve import serving as serving_module
from openk2.tokenizer import default_tokenizer
from serve.live import LiveServer, ScriptedLM, serving

SCRIPT = "All good here, nothing to report."
INSTANT = {"thinking": {"type": "disabled"}}


class TripwireLM(ScriptedLM):
    """The scripted model, except that a conversation mentioning `trigger` gets a token after
    three output tokens on which the next forward pass raises (a mid-stream engine failure)."""

    def __init__(self, tokenizer: object, trigger: str) -> None:
        super().__init__(tokenizer, tokenizer.encode(SCRIPT))  # type: ignore[attr-defined]
        self.trigger = tokenizer.encode(trigger)[0]  # type: ignore[attr-defined]
        self.trip = tokenizer.encode("\u2620")[0]  # type: ignore[attr-defined]

    def forward(self, input_ids: torch.Tensor, *args: object, **kw: object) -> torch.Tensor:
        if bool((input_ids == self.trip).any()):
            raise RuntimeError("tripwire")
        return super().forward(input_ids, *args, **kw)  # type: ignore[arg-type]

    def _next(self, history: list[int]) -> int:
        token = super()._next(history)
        start = len(history) - history[::-1].index(self._anchor)
        if self.trigger in history[:start] and len(history) - start > 6:
            return self.trip
        return token


@pytest.fixture(scope="module")
def tripwire() -> Iterator[LiveServer]:
    tokenizer = default_tokenizer()
    with serving(TripwireLM(tokenizer, " poison"), tokenizer, name="scripted") as live:
        yield live


async def stream_text(client: AsyncOpenAI, content: str) -> str:
    stream = await client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": content}], stream=True,
        extra_body=INSTANT,
    )  # fmt: skip
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


async def test_a_failing_stream_ends_in_an_error_event_for_that_client_only(
    tripwire: LiveServer,
) -> None:
    client = AsyncOpenAI(base_url=tripwire.url + "/v1", api_key="x", max_retries=0)
    good = [asyncio.create_task(stream_text(client, f"hello {i}")) for i in range(4)]
    with pytest.raises(openai.APIError, match="Generation failed for this request.*tripwire"):
        await stream_text(client, "a poison pill")
    assert await asyncio.gather(*good) == [SCRIPT] * 4
    stats = tripwire.state.engine.stats()
    assert tripwire.state.engine.num_step_errors == 0 and stats.finished["error"] >= 1
    assert stats.num_used_blocks == 0


def test_a_failing_request_is_a_500_in_the_openai_shape(tripwire: LiveServer) -> None:
    poison = [{"role": "user", "content": "a poison pill"}]
    body = {"model": "scripted", "messages": poison, **INSTANT}
    response = httpx.post(tripwire.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "generation_failed" and "tripwire" in error["message"]
    body["messages"] = [{"role": "user", "content": "hello"}]
    ok = httpx.post(tripwire.url + "/v1/chat/completions", json=body, timeout=60)
    assert ok.json()["choices"][0]["message"]["content"] == SCRIPT


def test_a_bug_while_streaming_ends_that_stream_with_an_error_event(
    tripwire: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise KeyError("parser bug")

    client = openai.OpenAI(base_url=tripwire.url + "/v1", api_key="x", max_retries=0)
    monkeypatch.setattr(serving_module.ChoiceState, "feed", broken)
    stream = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hi"}], stream=True,
        extra_body=INSTANT,
    )  # fmt: skip
    with pytest.raises(openai.APIError, match="error while streaming"):
        list(stream)
    monkeypatch.undo()
    reply = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hi"}], extra_body=INSTANT
    )
    assert reply.choices[0].message.content == SCRIPT
