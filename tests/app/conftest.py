"""Fixtures of the web app's tests: the shipped embedded model, served with the app mounted.

Torch runs on one thread: the tiny model is dispatch-bound, and the build machines are shared.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from openk2.embedded import SERVED_NAME
from openk2.serve.launch import ServeConfig, load_model_and_tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def embedded_model() -> tuple[torch.nn.Module, object, str]:
    model, tokenizer, _ = load_model_and_tokenizer(ServeConfig(model="embedded"))
    return model, tokenizer, SERVED_NAME
