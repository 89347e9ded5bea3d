"""Shared fixtures: the seeded `debug` preset model with the bundled tokenizer, and a live server.

Torch runs on one thread here: the tiny models are dispatch-bound, and on the shared 2-core build
machines a second OpenMP thread mostly spins.
"""

from collections.abc import Iterator

import pytest
import torch
from openai import OpenAI

from openk2.serve.launch import ServeConfig, load_model_and_tokenizer
from serve.live import LiveServer, serving
from torch_threads import one_torch_thread  # noqa: F401  (autouse: one torch thread)


@pytest.fixture(scope="session")
def debug_model() -> tuple[torch.nn.Module, object]:
    model, tokenizer, _ = load_model_and_tokenizer(ServeConfig(model="debug"))
    return model, tokenizer


@pytest.fixture(scope="module")
def server(debug_model: tuple[torch.nn.Module, object]) -> Iterator[LiveServer]:
    model, tokenizer = debug_model
    with serving(model, tokenizer) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)
