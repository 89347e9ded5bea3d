"""Every error status in OpenAI's shape: 400, 401, 404, 429, 503 (with Retry-After), never 500."""

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import OpenAI

from openk2.engine.config import EngineConfig
from serve.live import LiveServer, serving

USER = [{"role": "user", "content": "hi"}]


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


def test_invalid_json_and_schema_are_400(server: LiveServer, client: OpenAI) -> None:
    bad = httpx.post(server.url + "/v1/chat/completions", content=b'{"model": "debug", ',
                     headers={"Content-Type": "application/json"})  # fmt: skip
    assert bad.status_code == 400 and "JSON" in error_of(bad)["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="debug", messages=[])
    assert exc.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="debug", messages=USER, temperature=7)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="debug", messages=[{"role": "robot", "content": "x"}])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}},
          "tools": [{"type": "function", "function": {"name": "yes"}}]}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:,"}}]}]}, "messages.0.content"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True,
          "schema": {"type": "object", "not": {}}}}}, "response_format"),
        ({"guided_regex": "a("}, "guided_regex"),
        ({"structured_outputs": {"regex": "a", "choice": ["b"]}}, "structured_outputs"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"x": {"type": "date"}}}}}],
          "tool_choice": "required"}, "tools.0.function.parameters"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": "x"}}}]}, "tools.0.function.parameters"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": [1]}}}], "tool_choice": "required"},
         "tools.0.function.parameters"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "required": 5}}}]}, "tools.0.function.parameters"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "string", "maxLength": "x"}}}}, "response_format"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"top_k": 2**70}, "top_k"),
        ({"top_k": 2**40}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"seed": 2**80}, "seed"),
        ({"stop": ["a"] * 20}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"stop": "x" * 1000}, "stop"),
        ({"min_tokens": 50, "max_tokens": 5}, "min_tokens"),
        ({"max_completion_tokens": 2**40}, "max_completion_tokens"),
        ({"logit_bias": {"1": 500}}, "logit_bias"),
        ({"logit_bias": {str(i): 1 for i in range(2000)}}, "logit_bias"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"n": 0}, "n"),
    ],
)  # fmt: skip
def test_request_mistakes_are_400_naming_the_param(
    server: LiveServer, extra: dict, param: str
) -> None:
    body = {"model": "debug", "messages": USER, **extra}
    response = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert error_of(response)["param"] == param


def test_unknown_model_and_route_are_404(server: LiveServer, client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-9", messages=USER)
    assert exc.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="x")
    assert httpx.get(server.url + "/v1/nothing-here").status_code == 404


def test_over_long_prompt_is_400_with_the_limit(client: OpenAI) -> None:
    long = [{"role": "user", "content": "lorem ipsum " * 1500}]
    with pytest.raises(openai.BadRequestError, match="maximum context length is 1024 tokens") as e:
        client.chat.completions.create(model="debug", messages=long)
    assert e.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="1024"):
        client.chat.completions.create(model="debug", messages=USER, max_tokens=5000)
    with pytest.raises(openai.BadRequestError, match="1024"):
        client.completions.create(model="debug", prompt=list(range(1100)))


@pytest.mark.parametrize(
    ("engine", "limit", "named"),
    [
        (EngineConfig(max_model_len=300, num_blocks=160, packed_gemms=False), 300,
         "--max-model-len"),
        (EngineConfig(num_blocks=20, block_size=16, packed_gemms=False), 320,
         "memory of the latent cache"),
    ],
)  # fmt: skip
def test_over_the_served_limit_is_400_naming_what_sets_it(
    debug_model: tuple, engine: EngineConfig, limit: int, named: str
) -> None:
    """A request the server's limit (not the model's) cannot hold is refused before any work,
    and the server keeps answering requests that fit."""
    with serving(*debug_model, engine=engine) as live:
        client = OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError) as exc:
            client.completions.create(model="debug", prompt=list(range(1, limit + 1)))
        assert f"maximum context length is {limit} tokens" in exc.value.message
        assert named in exc.value.message
        assert exc.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
        ok = client.completions.create(model="debug", prompt=list(range(1, 40)), max_tokens=2)
        assert ok.usage is not None and ok.usage.prompt_tokens == 39


def test_api_keys_are_enforced_on_v1_only(debug_model: tuple) -> None:
    with serving(*debug_model, api_keys=["k1", "k2"]) as live:
        for key in ("wrong", "k1k2"):
            bad = OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                bad.models.list()
        missing = httpx.get(live.url + "/v1/models")
        assert missing.status_code == 401 and error_of(missing)["code"] == "invalid_api_key"
        good = OpenAI(base_url=live.url + "/v1", api_key="k2", max_retries=0)
        assert good.models.list().data[0].id == "debug"
        assert httpx.get(live.url + "/health").status_code == 200


def test_overload_is_429_with_retry_after(debug_model: tuple) -> None:
    with serving(*debug_model, max_concurrency=1) as live:
        client = OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="debug", messages=USER, max_tokens=900, stream=True,
            extra_body={"ignore_eos": True},
        )  # fmt: skip
        next(iter(stream))
        with pytest.raises(openai.RateLimitError) as exc:
            client.chat.completions.create(model="debug", messages=USER, max_tokens=2)
        assert exc.value.response.headers["retry-after"] == "1"
        stream.close()
        for _ in range(200):  # the slot is released once the server sees the disconnect
            if live.state.limiter.in_flight == 0:
                break
            httpx.get(live.url + "/health")
        assert client.chat.completions.create(model="debug", messages=USER, max_tokens=2)


def test_engine_down_is_503_with_retry_after(debug_model: tuple) -> None:
    with serving(*debug_model) as live:
        live.state.engine.shutdown()
        client = OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as exc:
            client.chat.completions.create(model="debug", messages=USER, max_tokens=2)
        assert exc.value.status_code == 503 and exc.value.response.headers["retry-after"] == "5"
        assert httpx.get(live.url + "/health").status_code == 503


finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-5, 5000) | finite
json_values = st.recursive(
    scalars | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["debug", "x"]), "messages": json_values},
    optional={"max_tokens": st.integers(-2, 3), "n": json_values, "tools": json_values,
              "tool_choice": json_values, "stop": json_values, "stream": st.booleans()},
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_no_input_crashes_the_server(server: LiveServer, body: dict) -> None:
    response = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code < 500, response.text
    assert server.state.engine.is_running
