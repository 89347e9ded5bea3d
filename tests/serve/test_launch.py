"""`serve/launch.py`: the shared dtype vocabulary, the one tokenizer rule, exact size limits;
max_model_len follows the model (and the research overrides), and a --max-model-len past the
model's limit is refused before anything is served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from openk2.engine.config import EngineConfig
from openk2.model import build_model, get_preset
from openk2.model.params import total_and_active
from openk2.model.weights import save_model
from openk2.serve import launch
from openk2.serve.launch import ServeConfig, build_state, load_model_and_tokenizer
from openk2.tokenizer import default_tokenizer_path


def test_dtype_uses_the_shared_vocabulary() -> None:
    with pytest.raises(ValueError, match="--dtype must be one of float32, bfloat16, float16"):
        build_state(ServeConfig(model="debug", dtype="int8"))
    with pytest.warns(FutureWarning, match="'bf16' is deprecated; write 'bfloat16'"):
        model, _, _ = load_model_and_tokenizer(ServeConfig(model="debug", dtype="bf16"))
    assert model.lm_head.weight.dtype == torch.bfloat16


def test_random_preset_limit_uses_the_exact_parameter_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = get_preset("debug").replace(vocab_size=8192)  # resized to the bundled tokenizer
    total, _ = total_and_active(config)
    model, _, _ = load_model_and_tokenizer(ServeConfig(model="debug"))
    assert sum(p.numel() for p in model.parameters()) == total
    monkeypatch.setattr(launch, "MAX_RANDOM_PARAMS", total)
    load_model_and_tokenizer(ServeConfig(model="debug"))
    monkeypatch.setattr(launch, "MAX_RANDOM_PARAMS", total - 1)
    with pytest.raises(ValueError, match="too large to serve with random weights"):
        load_model_and_tokenizer(ServeConfig(model="debug"))


def _checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "final"
    save_model(build_model(get_preset("debug").replace(vocab_size=8192), seed=0), folder)
    return folder


def test_a_checkpoint_without_tokenizer_names_what_is_missing(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="final has no tokenizer: tiktoken.model is miss"):
        load_model_and_tokenizer(ServeConfig(model=str(folder)))
    _, tokenizer, name = load_model_and_tokenizer(
        ServeConfig(model=str(folder), tokenizer=str(default_tokenizer_path())))
    assert tokenizer.vocab_size == 8192 and name == "final"
    for file in default_tokenizer_path().iterdir():
        shutil.copy(file, folder / file.name)
    assert load_model_and_tokenizer(ServeConfig(model=str(folder)))[1].vocab_size == 8192


def test_a_tokenizer_larger_than_the_model_vocabulary_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    save_model(build_model(get_preset("debug"), seed=0), folder)  # 512 ids
    with pytest.raises(ValueError, match="8192 ids but the model's vocab_size is 512"):
        load_model_and_tokenizer(ServeConfig(model=str(folder),
                                             tokenizer=str(default_tokenizer_path())))


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


def test_quant_option_quantizes_the_served_model() -> None:
    from openk2.model.layers.quant_linear import QuantLinear
    from openk2.model.quant.packed import packed_kernels_available

    with pytest.raises(ValueError, match="--quant must be one of none, int8, int4"):
        build_state(ServeConfig(model="debug", quant="int2"))
    if not packed_kernels_available():
        pytest.skip("torch build lacks the packed CPU kernels")
    state = build_state(ServeConfig(model="debug", dtype="bfloat16", quant="int8"))
    model = state.engine.engine.runner.model
    assert isinstance(model.lm_head, QuantLinear) and model.lm_head.fmt == "int8"


def test_an_int4_checkpoint_serves_with_packed_experts(tmp_path: Path) -> None:
    from openk2.model.layers.quant_linear import QuantLinear
    from openk2.model.quant.packed import packed_kernels_available

    if not packed_kernels_available():
        pytest.skip("torch build lacks the packed CPU kernels")
    folder = tmp_path / "int4"
    model = build_model(get_preset("debug").replace(vocab_size=8192), dtype=torch.bfloat16, seed=0)
    save_model(model, folder, int4_experts=True)
    cfg = ServeConfig(model=str(folder), tokenizer=str(default_tokenizer_path()),
                      dtype="bfloat16", quant="int4")
    loaded, _, _ = load_model_and_tokenizer(cfg)
    assert isinstance(loaded.model.layers[1].mlp.experts[0].gate_proj, QuantLinear)  # 32 wide


def test_generation_config_sets_the_sampling_defaults_a_request_leaves_open(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from openk2.serve.chat_plan import THINKING_DEFAULTS, sampling_params
    from openk2.serve.protocol import ChatCompletionRequest

    assert launch.generation_defaults("embedded") == {"temperature": 0.0}  # the shipped file
    assert launch.generation_defaults("debug") == {}
    (tmp_path / "generation_config.json").write_text('{"temperature": 0.3, "top_k": 5}')
    assert launch.generation_defaults(str(tmp_path)) == {"temperature": 0.3}
    state = SimpleNamespace(generation_defaults={"temperature": 0.3}, adapter_for=lambda _: None)
    hi = [{"role": "user", "content": "hi"}]
    open_req = ChatCompletionRequest.model_validate({"model": "m", "messages": hi})
    params = sampling_params(state, open_req, THINKING_DEFAULTS, 8)  # type: ignore[arg-type]
    assert (params.temperature, params.top_p) == (0.3, THINKING_DEFAULTS[1])
    set_req = open_req.model_copy(update={"temperature": 0.9})
    assert sampling_params(state, set_req, THINKING_DEFAULTS, 8).temperature == 0.9  # type: ignore[arg-type]
    (tmp_path / "generation_config.json").write_text('["not", "a", "dict"]')
    with pytest.raises(ValueError, match="not a generation config"):
        launch.generation_defaults(str(tmp_path))
