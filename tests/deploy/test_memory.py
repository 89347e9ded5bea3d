"""The memory arithmetic reproduces the spec's figures (k26-model.md §2, §9; performance.md §3)."""

from __future__ import annotations

import json

import pytest

from openk2.deploy.memory import GiB, count_params, kv_bytes_per_token, weight_bytes
from openk2.deploy.models import PRESETS, load_model


def test_k26_parameter_counts_match_the_spec() -> None:
    p = count_params(load_model("moonshotai/Kimi-K2.6"))
    assert p.attention_per_layer == 101_124_096  # "attention 101.12M/layer"
    assert p.expert == 44_040_192  # "one expert 44.04M"
    assert round((p.routed + p.dense_rest) / 1e9, 1) == 1026.4  # "text total ≈ 1,026.4B"
    assert round(p.vision / 1e6) == 471  # MoonViT ~417M + the 54M projector


def test_k26_int4_checkpoint_is_554_gib() -> None:
    w = weight_bytes(load_model("moonshotai/Kimi-K2.6"))
    assert round(w.total / GiB, 1) == 554.3  # K25-DUMP: 554.3 (GiB) on disk
    assert round(w.total / 1e9) == 595  # "≈ 595 GB decimal"
    assert round(w.routed / 1e9) == 571  # performance.md §3.1: INT4 experts 571 GB


def test_fp8_k2_instruct_is_about_a_terabyte() -> None:
    w = weight_bytes(load_model("moonshotai/Kimi-K2-Instruct"))
    assert 1.0e12 < w.total < 1.05e12  # "K2-Instruct FP8 (~1 TB)"


@pytest.mark.parametrize(("dtype", "per_token", "kib"), [("bf16", 70_272, 68.6),
                                                         ("fp8", 35_136, 34.3)])
def test_latent_kv_per_token(dtype: str, per_token: int, kib: float) -> None:
    m = load_model("moonshotai/Kimi-K2.6")
    assert kv_bytes_per_token(m, dtype) == per_token == 576 * 61 * (2 if dtype == "bf16" else 1)
    assert round(per_token / 1024, 1) == kib


def test_a_local_config_json_reads_the_same_as_the_preset(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(PRESETS["moonshotai/Kimi-K2.5"]))
    local = load_model(str(tmp_path))
    assert weight_bytes(local) == weight_bytes(load_model("moonshotai/Kimi-K2.5"))


def test_a_smaller_config_scales_the_formulas(tmp_path) -> None:
    small = dict(PRESETS["moonshotai/Kimi-K2-Thinking"], num_hidden_layers=2,
                 n_routed_experts=8, kv_lora_rank=256)
    (tmp_path / "config.json").write_text(json.dumps(small))
    m = load_model(str(tmp_path))
    assert kv_bytes_per_token(m, "bf16") == (256 + 64) * 2 * 2
    assert count_params(m).routed == 1 * 8 * 44_040_192


def test_a_preset_without_its_org() -> None:
    assert load_model("Kimi-K2.5").name == "moonshotai/Kimi-K2.5"


def test_bad_sources_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="neither a known model"):
        load_model("someone/Unknown-Model")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="lacks num_hidden_layers"):
        load_model(str(tmp_path))
