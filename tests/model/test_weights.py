"""save_model -> load_model: exact round trips, layouts, sharding, every bad-checkpoint error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from openk2.model import KimiK2ForCausalLM, ModelConfig, build_model, get_preset
from openk2.model import weights as weights_module
from openk2.model.safetensors_io import INDEX_NAME, SINGLE_NAME, CheckpointError
from openk2.model.weights import load_model, save_model


def _model(
    dtype: torch.dtype = torch.float32, config: ModelConfig | None = None
) -> KimiK2ForCausalLM:
    model = build_model(config or get_preset("debug"), dtype=dtype, seed=0)
    with torch.no_grad():  # init leaves the router bias at 0 and norms at 1: make them distinct
        for name, tensor in model.state_dict().items():
            if name.endswith(("norm.weight", "e_score_correction_bias")):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    return model.eval()


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        assert torch.equal(sa[name], sb[name]), name


def _logits(model: KimiK2ForCausalLM) -> torch.Tensor:
    ids = torch.randint(
        0, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        return model(ids).float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_save_load_round_trip_is_exact(tmp_path: Path, dtype: torch.dtype) -> None:
    model = _model(dtype)
    files = save_model(model, tmp_path)
    assert [f.name for f in files] == [SINGLE_NAME]
    loaded = load_model(tmp_path)
    _assert_same(model, loaded)
    assert (
        loaded.get_submodule("model.layers.1.mlp.gate").e_score_correction_bias.dtype
        == torch.float32
    )
    assert torch.equal(_logits(model), _logits(loaded))
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == str(dtype)[6:]


def test_sharded_round_trip(tmp_path: Path) -> None:
    model = _model()
    files = save_model(model, tmp_path, max_shard_size="200KB")
    assert len(files) > 3 and (tmp_path / INDEX_NAME).is_file()
    _assert_same(model, load_model(tmp_path))


def test_k25_layout_round_trip(tmp_path: Path) -> None:
    model = _model(torch.bfloat16)
    save_model(model, tmp_path, layout="k25")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "kimi_k25" and config["text_config"]["model_type"] == "kimi_k2"
    names = list(load_file(tmp_path / SINGLE_NAME))
    assert all(n.startswith("language_model.") for n in names)
    assert "language_model.lm_head.weight" in names
    _assert_same(model, load_model(tmp_path))


def test_load_casts_to_the_requested_dtype_but_keeps_the_router_bias_fp32(tmp_path: Path) -> None:
    save_model(_model(torch.bfloat16), tmp_path)
    loaded = load_model(tmp_path, dtype=torch.float32)
    assert loaded.lm_head.weight.dtype == torch.float32
    loaded = load_model(tmp_path / SINGLE_NAME, dtype=torch.bfloat16)  # a file path works too
    assert (
        loaded.get_submodule("model.layers.2.mlp.gate").e_score_correction_bias.dtype
        == torch.float32
    )


# ---------------------------------------------------------------------------------------------
# Bad checkpoints: every error names the file and the tensor
# ---------------------------------------------------------------------------------------------


def _edit_weights(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    tensors = load_file(path / SINGLE_NAME)
    edit(tensors)
    save_file(tensors, path / SINGLE_NAME)


def _edit_config(path: Path, **changes: object) -> None:
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(config | changes))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    save_model(_model(), tmp_path)
    return tmp_path


def _error(path: Path) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    return info.value


def test_missing_tensor(saved: Path) -> None:
    _edit_weights(saved, lambda t: t.pop("model.layers.1.self_attn.kv_b_proj.weight"))
    err = _error(saved)
    assert err.tensor == "model.layers.1.self_attn.kv_b_proj.weight" and "missing" in str(err)
    assert err.file == str(saved)


def test_unexpected_tensor(saved: Path) -> None:
    _edit_weights(
        saved, lambda t: t.update({"model.layers.0.self_attn.q_proj.weight": torch.zeros(2)})
    )
    err = _error(saved)
    assert err.tensor == "model.layers.0.self_attn.q_proj.weight" and "unexpected" in str(err)
    assert err.file is not None and err.file.endswith(SINGLE_NAME)


def test_wrong_shape(saved: Path) -> None:
    name = "model.layers.2.mlp.experts.3.up_proj.weight"
    _edit_weights(saved, lambda t: t.update({name: torch.zeros(31, 64)}))
    err = _error(saved)
    assert err.tensor == name and "wrong shape [31, 64]" in str(err)
    assert "moe_intermediate_size=32" in str(err)


def test_wrong_dtype(saved: Path) -> None:
    name = "model.norm.weight"
    _edit_weights(saved, lambda t: t.update({name: torch.ones(64, dtype=torch.int32)}))
    err = _error(saved)
    assert err.tensor == name and "wrong dtype torch.int32" in str(err)


def test_truncated_file(saved: Path) -> None:
    data = (saved / SINGLE_NAME).read_bytes()
    (saved / SINGLE_NAME).write_bytes(data[: len(data) // 2])
    err = _error(saved)
    assert "truncated" in str(err) and err.file is not None and err.file.endswith(SINGLE_NAME)
    assert err.tensor is not None


def test_config_hidden_size_mismatch(saved: Path) -> None:
    _edit_config(saved, hidden_size=96)
    err = _error(saved)
    assert "hidden_size=96" in str(err) and "does not match the weights" in str(err)
    assert err.tensor == "model.embed_tokens.weight"


def test_config_with_fewer_layers(saved: Path) -> None:
    _edit_config(saved, num_hidden_layers=2)
    err = _error(saved)
    assert err.tensor is not None and err.tensor.startswith("model.layers.2.")
    assert "num_hidden_layers=2, the weights have 3 layers" in str(err)
    assert "model.layers.2-2 are not in the model" in str(err)


def test_config_with_more_layers(saved: Path) -> None:
    _edit_config(saved, num_hidden_layers=4)
    err = _error(saved)
    assert "num_hidden_layers=4, the weights have 3 layers: model.layers.3-3 are missing" in str(
        err
    )


def _refuse_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make building any model fail the test: these checks must come from names and headers."""

    def build(config: object) -> None:
        raise AssertionError("a model was built before the config was checked against the weights")

    monkeypatch.setattr(weights_module, "KimiK2ForCausalLM", build)


@pytest.mark.parametrize("layers", [3_000, 100_000])
def test_a_config_claiming_huge_layer_counts_fails_before_building(
    saved: Path, layers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit_config(saved, num_hidden_layers=layers)
    _refuse_to_build(monkeypatch)
    err = _error(saved)
    assert f"num_hidden_layers={layers}, the weights have 3 layers" in str(err)
    assert err.file == str(saved)


def test_sharded_checkpoint_is_checked_against_its_index_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_model(_model(), tmp_path, max_shard_size="100KB")
    assert (tmp_path / INDEX_NAME).is_file()
    _refuse_to_build(monkeypatch)
    for change, message in [
        ({"num_hidden_layers": 100_000}, "num_hidden_layers=100000, the weights have 3 layers"),
        ({"hidden_size": 96}, "hidden_size=96"),
        ({"vocab_size": 1024}, "vocab_size=1024"),
        ({"kv_lora_rank": 48}, "kv_lora_rank=48"),
        ({"n_routed_experts": 4000}, "n_routed_experts=4000 (first MoE layer 1"),
        ({"first_k_dense_replace": 0}, "the weights have 0 routed experts in that layer"),
    ]:
        config = json.loads((tmp_path / "config.json").read_text())
        (tmp_path / "config.json").write_text(json.dumps(config | change))
        assert message in str(_error(tmp_path))
        (tmp_path / "config.json").write_text(json.dumps(config))


def test_config_with_more_experts(saved: Path) -> None:
    _edit_config(saved, n_routed_experts=16)
    err = _error(saved)  # the router's shape disagrees first
    assert "n_routed_experts=16" in str(err)


def test_missing_or_invalid_config(saved: Path) -> None:
    _edit_config(saved, num_attention_heads=0)
    err = _error(saved)
    assert "invalid config" in str(err) and err.file == str(saved / "config.json")
    _edit_config(saved, num_attention_heads=4, quantization_config="int4")
    assert "quantization_config must be a JSON object" in str(_error(saved))
    (saved / "config.json").unlink()
    err = _error(saved)
    assert err.file is not None and err.file.endswith("config.json")


def test_resave_into_the_directory_the_model_was_loaded_from(tmp_path: Path) -> None:
    """Loaded weights are memory-mapped views; the writer never rewrites a mapped file in place."""
    model = _model(torch.bfloat16)
    save_model(model, tmp_path, max_shard_size="200KB")
    loaded = load_model(tmp_path)
    save_model(loaded, tmp_path)  # one shard now: the old shards and index are replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", SINGLE_NAME]
    _assert_same(model, loaded)
    _assert_same(model, load_model(tmp_path))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_onto_cuda_decodes_int4_there(tmp_path: Path) -> None:
    save_model(_model(torch.bfloat16), tmp_path, int4_experts=True)
    on_cpu, on_gpu = load_model(tmp_path), load_model(tmp_path, device="cuda")
    assert on_gpu.lm_head.weight.device.type == "cuda"
    for name, tensor in on_gpu.state_dict().items():
        assert torch.equal(tensor.cpu(), on_cpu.state_dict()[name]), name
