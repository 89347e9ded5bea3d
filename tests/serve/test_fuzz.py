"""Hostile traffic beside normal traffic: a few hundred bad requests while greedy streams run.

Three sources of bad requests, all sent while `STREAMS` clients keep streaming with the official
`openai` client: schemathesis cases from the server's own `/openapi.json` (valid and invalid per
the schema, for both completion endpoints), hand-written hypothesis strategies for the shapes the
schema leaves open (tool parameter schemas, `response_format`, out-of-range sampling values), and
raw bodies that are not JSON at all. Every answer must be < 500 and, when an error, a JSON
object in OpenAI's error shape; every normal stream must produce exactly the text it produces
alone. Bodies that would generate are capped at a few tokens so the run stays short.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import OpenAI

from serve.live import LiveServer

STREAMS = 3
"""Normal clients streaming for the whole fuzz run."""
MAX_FUZZ_TOKENS = 4
"""Generation budget forced onto fuzz bodies that would run (the engine work is not the point)."""
PROMPTS = ["Tell me about the sea.", "List three colours.", "Count to five, slowly."]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


# ---- the normal clients ----------------------------------------------------------------------


def greedy_stream(client: OpenAI, prompt: str) -> str:
    stream = client.chat.completions.create(
        model="debug", messages=[{"role": "user", "content": prompt}], stream=True,
        temperature=0, max_tokens=24, extra_body={"ignore_eos": True},
    )  # fmt: skip
    parts = []
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta
            parts.append((delta.content or "") + (getattr(delta, "reasoning_content", "") or ""))
    return "".join(parts)


class NormalTraffic:
    """Threads that stream their prompt over and over until stopped; any difference is kept."""

    def __init__(self, server: LiveServer, expected: dict[str, str]) -> None:
        self._client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        self._expected = expected
        self._stop = threading.Event()
        self.completed = 0
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._loop, args=(p,)) for p in expected]

    def __enter__(self) -> NormalTraffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)

    def _loop(self, prompt: str) -> None:
        while not self._stop.is_set():
            try:
                text = greedy_stream(self._client, prompt)
            except Exception as exc:  # recorded, asserted on by the test
                self.failures.append(f"{prompt!r}: {type(exc).__name__}: {exc}")
                continue
            if text != self._expected[prompt]:
                self.failures.append(f"{prompt!r}: got {text!r}")
            self.completed += 1


# ---- the hostile clients ---------------------------------------------------------------------


def check_answer(status: int, body: bytes, what: object) -> None:
    """No 5xx; errors are JSON objects in OpenAI's shape."""
    assert status < 500, f"{status} for {what!r}: {body[:300]!r}"
    if status >= 400:
        error = json.loads(body)["error"]
        assert isinstance(error["message"], str) and error["message"], what
        assert {"type", "param", "code"} <= set(error), what


def capped(body: Any, use_model: bool) -> Any:
    """The body with a tiny generation budget (and, if asked, the served model's name)."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if use_model:
        body["model"] = "debug"
    for key in ("max_tokens", "max_completion_tokens"):  # invalid values stay as they are
        value = body.get(key, MAX_FUZZ_TOKENS + 1 if key == "max_tokens" else None)
        if type(value) is int and value > MAX_FUZZ_TOKENS:
            body[key] = MAX_FUZZ_TOKENS
    if type(body.get("n")) is int and body["n"] > 2:
        body["n"] = 2
    return body


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=10,
)  # fmt: skip
numbers = (
    st.sampled_from([0, 1, 2, 0.5, -1, 16, 2**31, 2**63, -(2**63) - 1, 2**70, 1e-30, 1e308])
    | st.integers()
    | st.floats()
)
schema_keys = st.sampled_from(
    ["type", "properties", "items", "required", "enum", "anyOf", "oneOf", "allOf", "$ref",
     "minLength", "maxLength", "minItems", "maxItems", "const", "additionalProperties",
     "pattern", "$defs", "$schema", "minimum", "format", "prefixItems"]
)  # fmt: skip
schemas = st.recursive(
    st.dictionaries(schema_keys, json_values, max_size=3),
    lambda inner: st.dictionaries(schema_keys, inner | json_values | st.lists(inner, max_size=2),
                                  max_size=3),
    max_leaves=6,
)  # fmt: skip
types = st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])
type_field = types | st.lists(types, min_size=1, max_size=2, unique=True)
names = st.text(max_size=5)
valid_leaves = st.booleans() | st.fixed_dictionaries(
    {"type": type_field},
    optional={"description": st.text(max_size=5), "enum": st.lists(json_values, min_size=1,
              max_size=3), "const": json_values, "minLength": st.integers(0, 5),
              "maxLength": st.integers(0, 5), "format": st.text(max_size=4),
              "pattern": st.sampled_from(["^a", "x*"]), "minimum": numbers},
)  # fmt: skip
valid_schemas = st.recursive(
    valid_leaves,
    lambda inner: st.fixed_dictionaries({}, optional={
        "type": type_field, "properties": st.dictionaries(names, inner, max_size=3),
        "items": inner, "anyOf": st.lists(inner, min_size=1, max_size=2),
        "oneOf": st.lists(inner, min_size=1, max_size=2),
        "required": st.lists(names, unique=True, max_size=2), "additionalProperties": inner,
        "$defs": st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
        "$ref": st.sampled_from(["#", "#/$defs/a", "#/nope"]), "not": inner}),
    max_leaves=8,
).filter(lambda schema: isinstance(schema, dict))  # fmt: skip
"""Schemas that pass the metaschema: they reach the template and the guided decoder."""
tools = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("function") | json_values,
         "function": st.fixed_dictionaries(
             {"name": st.sampled_from(["f", "get_weather", "bad name!"])},
             optional={"parameters": valid_schemas | schemas | json_values,
                       "description": json_values})}
    ) | json_values,
    max_size=2,
)  # fmt: skip
json_schema_specs = st.fixed_dictionaries(
    {"name": st.text(max_size=8)},
    optional={"schema": valid_schemas | schemas | json_values, "strict": json_values},
)
response_formats = (
    st.fixed_dictionaries(
        {"type": st.sampled_from(["json_schema", "json_object", "text", "yaml"])},
        optional={"json_schema": json_values | json_schema_specs},
    )
    | json_values
)
SAMPLING_FIELDS = {
    "temperature": numbers, "top_p": numbers, "top_k": numbers, "min_p": numbers, "n": numbers,
    "max_tokens": numbers, "max_completion_tokens": numbers, "min_tokens": numbers,
    "presence_penalty": numbers, "frequency_penalty": numbers, "repetition_penalty": numbers,
    "seed": numbers, "logprobs": st.booleans() | numbers, "top_logprobs": numbers,
    "stop": json_values | st.lists(st.text(max_size=4), max_size=20),
    "logit_bias": st.dictionaries(st.text(max_size=8) | st.integers().map(str), numbers,
                                  max_size=4) | json_values,
    "tool_choice": st.sampled_from(["auto", "required", "none"]) | json_values,
    "stream": st.booleans(), "stream_options": json_values, "thinking": json_values,
    "chat_template_kwargs": json_values, "parallel_tool_calls": json_values,
}  # fmt: skip
one_field = st.one_of([st.fixed_dictionaries({k: v}) for k, v in SAMPLING_FIELDS.items()])
sampling = st.lists(one_field, max_size=2).map(lambda ps: {k: v for p in ps for k, v in p.items()})
valid_messages = st.sampled_from(
    [[{"role": "user", "content": "hi"}],
     [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
     [{"role": "assistant", "content": None, "tool_calls": [
         {"id": "functions.f:0", "type": "function", "function": {"name": "f", "arguments": "{"}}]},
      {"role": "tool", "tool_call_id": "functions.f:0", "content": "x"}]]
)  # fmt: skip
messages = st.one_of(valid_messages, valid_messages, valid_messages, json_values)
hostile_chat = st.builds(
    lambda base, extra, tools_, fmt: {**base, **extra, **tools_, **fmt},
    st.fixed_dictionaries({"model": st.just("debug"), "messages": messages}),
    sampling,
    st.fixed_dictionaries({}, optional={"tools": tools}),
    st.fixed_dictionaries({}, optional={"response_format": response_formats}),
)
hostile_completion = st.builds(
    lambda prompt, extra: {"model": "debug", "prompt": prompt, **extra},
    st.one_of(st.text(max_size=20), st.lists(st.integers(0, 9000), max_size=4), json_values),
    st.fixed_dictionaries(
        {}, optional={"echo": json_values, "suffix": json_values, "best_of": numbers,
                      "logprobs": numbers, "stream": st.booleans()}),
)  # fmt: skip
raw_bodies = st.binary(max_size=64) | st.sampled_from(
    [b"", b"{", b"null", b"[]", b'"x"', b"{" * 3000 + b"}" * 3000, b'{"model": "debug", "mes',
     b'{"model":"debug","messages":[{"role":"user","content":"hi"}],"temperature":NaN}',
     b'{"model":"debug","messages":[{"role":"user","content":"\\ud800"}],"max_tokens":2}']
)  # fmt: skip


def operations(server: LiveServer) -> st.SearchStrategy[tuple[Any, bool]]:
    """schemathesis cases (valid and invalid) for both completion endpoints."""
    spec = httpx.get(server.url + "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    ops = [schema[path]["POST"] for path in ("/v1/chat/completions", "/v1/completions")]
    cases = st.one_of([op.as_strategy(generation_mode=mode) for op in ops for mode in modes])
    return st.tuples(cases, st.integers(0, 3).map(bool))  # mostly the served model's name


def test_hostile_requests_never_touch_normal_streams(server: LiveServer) -> None:
    http = httpx.Client(base_url=server.url, timeout=120)
    client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
    expected = {prompt: greedy_stream(client, prompt) for prompt in PROMPTS[:STREAMS]}
    sent = {"schemathesis": 0, "hostile": 0, "raw": 0}

    @FUZZ
    @given(item=operations(server))
    def schema_cases(item: tuple[Any, bool]) -> None:
        case, use_model = item
        body = capped(case.body, use_model) if case.body is not None else None
        kwargs: dict[str, Any] = {"headers": case.headers or {}}
        if body is not None and not isinstance(body, bytes | str):
            kwargs["content"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs["headers"]}
        elif body is not None:
            kwargs["content"] = body
        response = http.request(case.method, case.formatted_path, **kwargs)
        check_answer(response.status_code, response.content, body)
        sent["schemathesis"] += 1

    @FUZZ
    @given(body=hostile_chat | hostile_completion)
    def hostile(body: dict[str, Any]) -> None:
        path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
        raw = json.dumps(capped(body, use_model=True))  # NaN and Infinity included
        response = http.post(path, content=raw, headers={"Content-Type": "application/json"})
        check_answer(response.status_code, response.content, body)
        sent["hostile"] += 1

    @settings(FUZZ, max_examples=40)
    @given(raw=raw_bodies, path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]))
    def raw(raw: bytes, path: str) -> None:
        headers = {"Content-Type": "application/json"}
        response = http.post(path, content=raw, headers=headers)
        check_answer(response.status_code, response.content, raw)
        sent["raw"] += 1

    with NormalTraffic(server, expected) as normal:
        schema_cases()
        hostile()
        raw()
    assert not normal.failures, normal.failures[:3]
    assert normal.completed >= STREAMS
    assert sum(sent.values()) >= 250, sent
    assert server.state.engine.num_step_errors == 0
    assert server.state.engine.stats().finished.get("error", 0) == 0
