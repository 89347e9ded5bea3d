"""`openk2 synth-chats` and `openk2 train --config` end to end (debug preset, real tokenizer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model import build_model, get_preset
from openk2.model.weights import save_model
from openk2.tokenizer import default_tokenizer_path, resolve_tokenizer

_register_commands()
runner = CliRunner()

RUN = """
model: {preset: debug, overrides: {vocab_size: 8192}}
data: {kind: sft, train_files: ["%s"], seq_len: 1024}
optim: {lr: 0.01}
schedule: {warmup_steps: 1}
steps: 2
batch_size: 1
out_dir: "%s"
"""


def test_synth_chats_then_sft_train_with_progress(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = runner.invoke(app, ["synth-chats", "--out", str(data), "--train", "6",
                                 "--heldout", "2", "--seed", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    held = [json.loads(x) for x in (data / "heldout_tasks.jsonl").read_text().splitlines()]
    assert len(held) == 2 and all(t["split"] == "heldout" for t in held)
    run_dir = tmp_path / "run"
    (tmp_path / "run.yaml").write_text(RUN % (data / "train.jsonl", run_dir))
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "run.yaml")])
    assert result.exit_code == 0, result.output
    assert "steps: 2" in result.output and "final_loss" in result.output
    assert (run_dir / "final" / "config.json").is_file()
    bundled = resolve_tokenizer()  # a preset run: its final/ still carries the tokenizer
    assert (run_dir / "final" / "tiktoken.model").read_bytes() == bundled.vocab.read_bytes()
    assert (run_dir / "final" / "tokenizer_config.json").is_file()
    assert (run_dir / "loss.png").is_file()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_train_reports_config_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("steps: 2\noptimiser: {lr: 1}\n")
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and "unknown config key" in result.output
    (tmp_path / "small.yaml").write_text("model: {preset: debug}\ndata: {kind: sft, "
                                         f"train_files: ['{tmp_path}/none.jsonl']}}\n")  # fmt: skip
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "small.yaml")])
    assert result.exit_code == 2 and "no training file" in result.output
    (tmp_path / "v.yaml").write_text(f"data: {{train_files: ['{tmp_path}/v.yaml']}}\n")
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "v.yaml")])
    assert result.exit_code == 2 and "vocab_size" in result.output


PRETRAIN = """
model: {%s}
data: {kind: pretrain, train_files: ["%s"], seq_len: 32%s}
steps: 1
batch_size: 1
out_dir: "%s"
"""


def _pretrain(tmp_path: Path, model: str, tokenizer: Path | None = None) -> tuple[int, str]:
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 20)
    extra = "" if tokenizer is None else f', tokenizer: "{tokenizer}"'
    run = tmp_path / "run.yaml"
    run.write_text(PRETRAIN % (model, text, extra, tmp_path / "run"))
    result = runner.invoke(app, ["train", "--config", str(run)])
    return result.exit_code, result.output


def test_data_tokenizer_trains_and_ships_in_final(tmp_path: Path) -> None:
    custom = tmp_path / "my-tokenizer"
    shutil.copytree(default_tokenizer_path(), custom)
    code, output = _pretrain(tmp_path, "preset: debug, overrides: {vocab_size: 8192}", custom)
    assert code == 0, output
    final = tmp_path / "run" / "final"
    for name in ("tiktoken.model", "tokenizer_config.json"):
        assert (final / name).read_bytes() == (custom / name).read_bytes()
    assert resolve_tokenizer(final).origin == "model"


def test_a_start_model_without_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    bare = tmp_path / "old-final"
    save_model(build_model(get_preset("debug").replace(vocab_size=8192), seed=0), bare)
    code, output = _pretrain(tmp_path, f'path: "{bare}"')
    assert code == 2 and "old-final has no tokenizer: tiktoken.model is missing" in output
    code, output = _pretrain(tmp_path, f'path: "{bare}"', default_tokenizer_path())
    assert code == 0, output
