"""Server start-up: max_model_len follows the model (and the research overrides), and a
--max-model-len past the model's limit is refused before anything is served."""

import pytest

from openk2.engine.config import EngineConfig
from openk2.serve.launch import ServeConfig, build_state


def test_default_max_model_len_is_the_model_limit() -> None:
    state = build_state(ServeConfig(model="debug", engine=EngineConfig(packed_gemms=False)))
    assert state.max_model_len == 1024


def test_max_model_len_past_the_model_limit_is_a_startup_error() -> None:
    cfg = ServeConfig(model="debug", engine=EngineConfig(max_model_len=4096, packed_gemms=False))
    with pytest.raises(ValueError, match="exceeds the model's max_position_embeddings 1024"):
        build_state(cfg)


def test_position_override_lets_a_longer_context_in() -> None:
    engine = EngineConfig(max_model_len=100_000, packed_gemms=False)
    cfg = ServeConfig(model="debug", engine=engine, max_position_embeddings=131_072)
    state = build_state(cfg)
    assert state.max_model_len == 100_000
