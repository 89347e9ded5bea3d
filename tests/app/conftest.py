"""Fixtures of the web app's tests: the shipped embedded model, served with the app mounted.

Torch runs on one thread: the tiny model is dispatch-bound, and the build machines are shared.
"""

from __future__ import annotations

import pytest
import torch

from openk2.embedded import SERVED_NAME
from openk2.serve.launch import ServeConfig, load_model_and_tokenizer
from torch_threads import one_torch_thread  # noqa: F401  (autouse: one torch thread)


@pytest.fixture(scope="session")
def embedded_model() -> tuple[torch.nn.Module, object, str]:
    model, tokenizer, _ = load_model_and_tokenizer(ServeConfig(model="embedded"))
    return model, tokenizer, SERVED_NAME
