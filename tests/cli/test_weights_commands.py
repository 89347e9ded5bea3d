"""`openk2 convert`: presets become loadable checkpoints; checkpoints convert between formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model.weights import load_model

_register_commands()
runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})  # no wrapped error lines


def test_preset_to_bf16_then_int4_and_fp32(tmp_path: Path) -> None:
    bf16, int4, fp32 = tmp_path / "bf16", tmp_path / "int4", tmp_path / "fp32"
    result = runner.invoke(app, ["convert", "--model", "debug", "--out", str(bf16), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 1 shard(s)" in result.output
    original = load_model(bf16)
    assert original.lm_head.weight.dtype == torch.bfloat16

    result = runner.invoke(
        app, ["convert", "--model", str(bf16), "--out", str(int4), "--int4-experts"]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((int4 / "config.json").read_text())
    assert config["quantization_config"]["format"] == "pack-quantized"
    with safe_open(int4 / "model.safetensors", "pt") as f:
        assert "model.layers.1.mlp.experts.0.up_proj.weight_packed" in set(f.keys())

    args = [
        "convert",
        "--model",
        str(int4),
        "--out",
        str(fp32),
        "--dtype",
        "float32",
        "--layout",
        "k25",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    converted = load_model(fp32)
    assert converted.lm_head.weight.dtype == torch.float32
    assert json.loads((fp32 / "config.json").read_text())["model_type"] == "kimi_k25"
    assert torch.equal(converted.lm_head.weight, original.lm_head.weight.float())


def test_same_seed_same_weights(tmp_path: Path) -> None:
    for name in ("a", "b"):
        args = ["convert", "--model", "debug", "--out", str(tmp_path / name), "--dtype", "float32"]
        assert runner.invoke(app, args).exit_code == 0
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(torch.equal(a.state_dict()[k], t) for k, t in b.state_dict().items())


def test_bad_arguments_are_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", "--model", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "neither a path nor a preset" in result.output
    result = runner.invoke(
        app, ["convert", "--model", "debug", "--out", str(tmp_path), "--dtype", "int8"]
    )
    assert result.exit_code != 0 and "float32, bfloat16, float16" in result.output
    (tmp_path / "config.json").write_text("{}")
    result = runner.invoke(app, ["convert", "--model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "invalid config" in result.output
    assert "missing required keys" in result.output
    assert not (tmp_path / "o").exists()


def test_generate_from_a_converted_preset_equals_generate_from_the_preset(tmp_path: Path) -> None:
    args = ["convert", "--model", "debug", "--out", str(tmp_path), "--dtype", "float32",
            "--seed", "5"]
    assert runner.invoke(app, args).exit_code == 0
    outputs = []
    for model in ("debug", str(tmp_path)):
        gen = ["generate", "--model", model, "--prompt-ids", "1,2,3", "--max-new-tokens", "6"]
        result = runner.invoke(app, [*gen, "--seed", "5", "--dtype", "float32"])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout.strip().splitlines()[0])
    assert outputs[0] == outputs[1] and len(outputs[0].split(",")) == 6


def test_old_dtype_spelling_still_converts_with_a_deprecation_warning(tmp_path: Path) -> None:
    args = ["convert", "--model", "debug", "--out", str(tmp_path / "o"), "--dtype", "fp32"]
    with pytest.warns(FutureWarning, match="--dtype 'fp32' is deprecated; write 'float32'"):
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "o").lm_head.weight.dtype == torch.float32
