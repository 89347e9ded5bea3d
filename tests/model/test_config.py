"""ModelConfig reads real K2 / K2.6 config shapes, validates, and writes HF-compatible JSON."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from openk2.model.config import PRESETS, ModelConfig, get_preset, load_config
from openk2.model.config_checks import CONFIG_DTYPES, KNOWN_MODEL_TYPES
from openk2.model.errors import ConfigError


def _k2_thinking_json() -> dict[str, Any]:
    """The text keys of a K2-Thinking style config.json, plus keys openk2 ignores."""
    values = get_preset("kimi-k2.6").to_hf_json()
    values.update(
        model_type="kimi_k2",
        eos_token_id=163585,
        rope_scaling=dict(values["rope_scaling"], beta_fast=1.0, beta_slow=1.0),
        auto_map={"AutoConfig": "configuration_deepseek.DeepseekV3Config"},
        ep_size=1,
        pretraining_tp=1,
        seq_aux=True,
        aux_loss_alpha=0.001,
        torch_dtype="bfloat16",
    )
    del values["dtype"]
    return values


def test_presets_build_and_k26_has_real_dims() -> None:
    for name in PRESETS:
        assert isinstance(get_preset(name), ModelConfig)
    k26 = get_preset("kimi-k2.6")
    assert (k26.hidden_size, k26.num_hidden_layers, k26.n_routed_experts) == (7168, 61, 384)
    assert k26.latent_dim == 576 and k26.qk_head_dim == 192
    assert k26.rope_scaling is not None
    assert (k26.rope_scaling["factor"], k26.rope_scaling["beta_fast"]) == (64.0, 32.0)
    assert k26.rope_scaling["beta_slow"] == 1.0
    assert (k26.bos_token_id, k26.eos_token_id) == (163584, 163586)
    assert [k26.is_moe_layer(i) for i in range(3)] == [False, True, True]
    assert k26.num_moe_layers == 60


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_small_presets_share_the_bundled_vocabulary(name: str) -> None:
    config = get_preset(name)
    assert config.vocab_size == 8192
    assert (config.bos_token_id, config.eos_token_id) == (8192 - 256, 8192 - 255)


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(KeyError, match="debug"):
        get_preset("gigantic")


def test_reads_plain_k2_json_ignoring_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_k2_thinking_json()))
    config = ModelConfig.from_hf_json(tmp_path)
    assert config.eos_token_id == 163585
    assert config.dtype == "bfloat16"
    assert config.rope_scaling is not None and config.rope_scaling["beta_fast"] == 1.0
    assert ModelConfig.from_hf_json(tmp_path / "config.json") == config


def test_reads_kimi_k25_text_config_with_top_level_fallbacks() -> None:
    text = _k2_thinking_json()
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        del text[key]
    text["quantization_config"] = {"quant_method": "compressed-tensors"}
    raw = {
        "model_type": "kimi_k25",
        "text_config": text,
        "vision_config": {"hidden_size": 1152},
        "bos_token_id": 163584,
        "eos_token_id": 163585,
        "pad_token_id": 163839,
        "media_placeholder_token_id": 163605,
    }
    config = ModelConfig.from_hf_json(raw)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (
        163584,
        163585,
        163839,
    )
    assert config.quantization_config == {"quant_method": "compressed-tensors"}
    assert config.hidden_size == 7168


def test_reads_rope_parameters_from_newer_transformers() -> None:
    values = get_preset("debug").to_hf_json()
    scaling = values.pop("rope_scaling")
    del values["rope_theta"]
    values["rope_parameters"] = dict(scaling, rope_type="yarn", rope_theta=1234.0)
    del values["rope_parameters"]["type"]
    config = ModelConfig.from_hf_json(values)
    assert config.rope_theta == 1234.0
    assert config.rope_scaling == scaling
    values["rope_parameters"] = {"rope_type": "default", "rope_theta": 999.0}
    plain = ModelConfig.from_hf_json(values)
    assert plain.rope_scaling is None and plain.rope_theta == 999.0


def test_to_hf_json_round_trips() -> None:
    config = get_preset("small")
    again = ModelConfig.from_hf_json(json.loads(json.dumps(config.to_hf_json())))
    assert again == config
    assert config.to_hf_json()["architectures"] == ["DeepseekV3ForCausalLM"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"hidden_size": "64"}, "hidden_size"),
        ({"num_experts_per_tok": 9}, "num_experts_per_tok"),
        ({"n_group": 3}, "divisible"),
        ({"n_group": 2, "topk_group": 3}, "topk_group"),
        ({"n_group": 4, "topk_group": 1, "num_experts_per_tok": 3}, "reachable"),
        ({"scoring_func": "softmax"}, "scoring_func"),
        ({"tie_word_embeddings": True}, "tie_word_embeddings"),
        ({"attention_bias": True}, "attention_bias"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "yarn"),
        ({"rope_scaling": {"factor": 2.0}}, "type"),
        ({"rope_scaling": {"type": "yarn", "factor": 0.5}}, "factor"),
        ({"rope_scaling": {"type": "yarn", "factor": 4.0}}, "original_max"),
        ({"qk_rope_head_dim": 7}, "even"),
        ({"eos_token_id": 512}, "eos_token_id"),
        ({"eos_token_id": [3, -1]}, "eos_token_id"),
        ({"rms_norm_eps": 0.0}, "rms_norm_eps"),
        ({"first_k_dense_replace": 4}, "first_k_dense_replace"),
        ({"q_lora_rank": 0}, "q_lora_rank"),
    ],
)
def test_invalid_values_are_rejected_by_name(change: dict[str, Any], message: str) -> None:
    values = dict(PRESETS["debug"], **change)
    with pytest.raises(ValueError, match=message):
        ModelConfig(**values)


def test_missing_file_and_bad_json_give_clear_errors(tmp_path: Path) -> None:
    file = str(tmp_path / "config.json")
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(tmp_path)
    assert info.value.file == file
    for text, message in [
        ("{not json", "not valid JSON"),
        ('{"vocab_size": 5', "truncated or corrupt"),
        ("", "not valid JSON"),
        ("[1, 2]", "JSON object, got list"),
    ]:
        (tmp_path / "config.json").write_text(text)
        with pytest.raises(ConfigError, match=message) as info:
            load_config(tmp_path)
        assert str(info.value).startswith(file)
    (tmp_path / "config.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        ModelConfig.from_hf_json(tmp_path / "config.json")


def _invalid(tmp_path: Path, **changes: Any) -> ConfigError:
    """The error `load_config` raises for the debug preset's config.json with `changes`."""
    (tmp_path / "config.json").write_text(json.dumps(get_preset("debug").to_hf_json() | changes))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'config.json'}: invalid config: ")
    return info.value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": "64"}, "hidden_size must be an integer, got '64'"),
        ({"rms_norm_eps": "1e-5"}, "rms_norm_eps must be a number, got '1e-5'"),
        ({"rope_theta": "x"}, "rope_theta must be a number, got 'x'"),
        ({"num_hidden_layers": None}, "num_hidden_layers must be an integer, got None"),
        ({"norm_topk_prob": "yes"}, "norm_topk_prob must be true or false, got 'yes'"),
        ({"n_routed_experts": 8.0}, "n_routed_experts must be an integer, got 8.0"),
        ({"q_lora_rank": True}, "q_lora_rank must be an integer or null, got True"),
        ({"eos_token_id": "x"}, "eos_token_id must be an integer or a list of integers or null"),
        ({"model_type": 5}, "model_type must be a string, got 5"),
        ({"rope_scaling": "yarn"}, "rope_scaling must be a JSON object or null, got 'yarn'"),
        ({"quantization_config": "int4"}, "quantization_config must be a JSON object or null"),
        ({"quantization_config": [1]}, "got \\[1\\]"),
        ({"num_attention_heads": 0}, "num_attention_heads must be an integer >= 1, got 0"),
        ({"vocab_size": -5}, "vocab_size must be an integer >= 1, got -5"),
        ({"n_shared_experts": -1}, "n_shared_experts must be an integer >= 0, got -1"),
        ({"rope_interleave": "no"}, "rope_interleave must be true or false, got 'no'"),
        ({"dtype": "float99"}, "dtype 'float99' is not supported"),
        ({"dtype": 3}, "dtype must be a string, got 3"),
        ({"dtype": None, "torch_dtype": "int8"}, "dtype 'int8' is not supported"),
        (
            {"rope_scaling": dict(PRESETS["debug"]["rope_scaling"], beta_fast="x")},
            "rope_scaling.beta_fast must be a finite number, got 'x'",
        ),
        (
            {"rope_scaling": dict(PRESETS["debug"]["rope_scaling"], mscale=None, truncate=1)},
            "rope_scaling.truncate must be true or false, got 1",
        ),
    ],
)
def test_bad_config_json_values_are_errors_naming_file_key_and_repr(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    assert re.search(message, str(_invalid(tmp_path, **change)))


def test_known_dtypes_load_and_a_torch_prefix_is_accepted() -> None:
    values = get_preset("debug").to_hf_json()
    for name in CONFIG_DTYPES:
        assert ModelConfig.from_hf_json(values | {"dtype": name}).dtype == name
    del values["dtype"]
    assert ModelConfig.from_hf_json(values | {"torch_dtype": "torch.float16"}).dtype == "float16"


def test_unknown_model_type_with_deepseek_v3_keys_warns_and_loads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    values = get_preset("debug").to_hf_json() | {"model_type": "my_k2_finetune"}
    with caplog.at_level(logging.WARNING, logger="openk2.model.config_checks"):
        config = ModelConfig.from_hf_json(values)
    assert config.hidden_size == 64
    assert "model_type 'my_k2_finetune' is not one openk2 knows" in caplog.text
    caplog.clear()
    for kind in KNOWN_MODEL_TYPES:
        ModelConfig.from_hf_json(values | {"model_type": kind})
    assert caplog.text == ""


def test_unknown_model_type_without_deepseek_v3_keys_is_an_error(tmp_path: Path) -> None:
    llama = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 9}
    (tmp_path / "config.json").write_text(json.dumps(llama))
    with pytest.raises(ConfigError, match="model_type 'llama' is not a DeepSeek-V3 / Kimi K2 "
                       "model .* lacks the DeepSeek-V3 keys intermediate_size"):  # fmt: skip
        load_config(tmp_path)
    nested = {"model_type": "kimi_k25", "text_config": llama}
    with pytest.raises(ValueError, match="text_config.model_type 'llama'"):
        ModelConfig.from_hf_json(nested)


def test_rope_interleave_defaults_true_and_round_trips() -> None:
    values = get_preset("debug").to_hf_json()
    assert values["rope_interleave"] is True
    del values["rope_interleave"]
    assert ModelConfig.from_hf_json(values).rope_interleave is True
    split = ModelConfig.from_hf_json(values | {"rope_interleave": False})
    assert split.rope_interleave is False
    assert ModelConfig.from_hf_json(split.to_hf_json()) == split


def test_missing_required_key_is_an_error() -> None:
    values = get_preset("debug").to_hf_json()
    del values["kv_lora_rank"]
    with pytest.raises(ValueError, match="missing required keys: kv_lora_rank"):
        ModelConfig.from_hf_json(values)


def test_kimi_k25_top_level_dtype_is_checked_too() -> None:
    text = get_preset("debug").to_hf_json()
    del text["dtype"]
    wrapper = {"model_type": "kimi_k25", "text_config": text}
    assert ModelConfig.from_hf_json(wrapper | {"torch_dtype": "float16"}).dtype == "float16"
    with pytest.raises(ValueError, match="dtype 'fp4' is not supported"):
        ModelConfig.from_hf_json(wrapper | {"dtype": "fp4"})
