"""A bad config.json is a clear error naming the file from every command that reads one.

inspect, generate, serve and train all read a checkpoint's config.json through
`openk2.model.config.load_config`; each case here is run through each command's CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model import build_model, get_preset
from openk2.model.weights import save_model
from openk2.tokenizer.resolve import copy_tokenizer, resolve_tokenizer

_register_commands()
runner = CliRunner()

BAD_CONFIGS: dict[str, tuple[object, str]] = {
    # name: (config.json content: a text, or changes to the debug config, expected fragment)
    "corrupt": ("{not json", "not valid JSON"),
    "truncated": ('{"vocab_size": 512, "hidden', "not valid JSON (truncated or corrupt?)"),
    "empty": ("", "not valid JSON"),
    "not an object": ("[1, 2]", "must hold a JSON object, got list"),
    "string size": ({"hidden_size": "64"}, "hidden_size must be an integer, got '64'"),
    "zero heads": ({"num_attention_heads": 0}, "num_attention_heads must be an integer >= 1"),
    "negative vocab": ({"vocab_size": -1}, "vocab_size must be an integer >= 1, got -1"),
    "string eps": ({"rms_norm_eps": "1e-5"}, "rms_norm_eps must be a number, got '1e-5'"),
    "quantization string": (
        {"quantization_config": "int4"},
        "quantization_config must be a JSON object or null, got 'int4'",
    ),
    "unknown dtype": ({"dtype": "float99"}, "dtype 'float99' is not supported"),
    "foreign model": (
        {"model_type": "llama", "kv_lora_rank": None, "q_lora_rank": None},
        "model_type 'llama' is not a DeepSeek-V3 / Kimi K2 model",
    ),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("debug")
    save_model(build_model(get_preset("debug"), seed=0), path)
    copy_tokenizer(resolve_tokenizer(), path)  # a complete model: only its config is broken
    return path


def _bad_copy(checkpoint: Path, tmp_path: Path, case: str) -> Path:
    target = tmp_path / "ckpt"
    shutil.copytree(checkpoint, target)
    content, _ = BAD_CONFIGS[case]
    if isinstance(content, dict):
        config = json.loads((target / "config.json").read_text()) | content
        content = json.dumps({k: v for k, v in config.items() if v is not None})
    (target / "config.json").write_text(str(content))
    return target


def _args(command: str, path: Path, tmp_path: Path) -> list[str]:
    if command == "inspect":
        return ["inspect", "--model", str(path)]
    if command == "generate":
        return ["generate", "--model", str(path), "--prompt-ids", "1,2", "--max-new-tokens", "1"]
    if command == "serve":
        return ["serve", "--model", str(path), "--port", "1"]
    (tmp_path / "t.jsonl").write_text('{"text": "hello world"}\n')
    run = {
        "model": {"path": str(path)},
        "data": {"kind": "pretrain", "train_files": [str(tmp_path / "t.jsonl")], "seq_len": 8},
        "steps": 1,
        "batch_size": 1,
        "out_dir": str(tmp_path / "run"),
    }
    (tmp_path / "run.yaml").write_text(json.dumps(run))  # JSON is YAML
    return ["train", "--config", str(tmp_path / "run.yaml")]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["inspect", "generate", "serve", "train"])
def test_every_command_names_config_json_and_spells_the_value(
    checkpoint: Path, tmp_path: Path, command: str, case: str
) -> None:
    path = _bad_copy(checkpoint, tmp_path, case)
    result = runner.invoke(app, _args(command, path, tmp_path), env={"COLUMNS": "500"})
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    output = " ".join(result.output.split())
    assert f"{path / 'config.json'}:" in output, output
    assert BAD_CONFIGS[case][1] in output, output
    assert "Traceback" not in output


def test_a_config_claiming_100000_layers_is_refused_from_the_checkpoint_index(
    checkpoint: Path, tmp_path: Path
) -> None:
    target = tmp_path / "ckpt"
    shutil.copytree(checkpoint, target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 100_000}))
    args = ["generate", "--model", str(target), "--prompt-ids", "1", "--max-new-tokens", "1"]
    result = runner.invoke(app, args, env={"COLUMNS": "500"})
    assert result.exit_code != 0
    assert "num_hidden_layers=100000, the weights have 3 layers" in " ".join(result.output.split())


def test_inspect_names_an_unknown_preset_with_its_quotes() -> None:
    result = runner.invoke(app, ["inspect", "--preset", "nope"], env={"COLUMNS": "500"})
    assert result.exit_code != 0 and "unknown preset 'nope'; choose one of" in result.output
