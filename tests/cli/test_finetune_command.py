"""`openk2 finetune`: one chat file to a LoRA model, with held-out eval before and after."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model import build_model, get_preset
from openk2.model.weights import save_model
from openk2.tokenizer import resolve_tokenizer
from openk2.tokenizer.resolve import copy_tokenizer

_register_commands()
runner = CliRunner()


def _chat(a: int, b: int) -> str:
    messages = [
        {"role": "user", "content": f"{a}+{b}?"},
        {"role": "assistant", "content": f"The sum is {a + b}."},
    ]
    return json.dumps({"messages": messages})


def test_finetune_trains_lora_and_reports_held_out_eval(tmp_path: Path) -> None:
    base = tmp_path / "base"
    save_model(build_model(get_preset("debug").replace(vocab_size=8192), seed=0), base)
    copy_tokenizer(resolve_tokenizer(), base)
    data = tmp_path / "chats.jsonl"
    data.write_text("\n".join(_chat(a, a + 1) for a in range(10)) + "\n")
    out = tmp_path / "run"
    args = ["finetune", "--data", str(data), "--base", str(base), "--lora-rank", "4",
            "--epochs", "3", "--out-dir", str(out), "--seq-len", "128", "--batch-size", "3",
            "--lr", "0.01", "--threads", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert report["held_out_rows"] == 1 and report["steps"] == 3  # 9 train rows x 3 / 3
    assert report["after"]["loss"] < report["before"]["loss"]
    assert set(report["after"]) == {"loss", "token_accuracy", "exact_match"}
    assert (out / "final" / "adapter" / "adapter_config.json").is_file()
    assert (out / "final" / "tiktoken.model").is_file()


def test_finetune_names_the_bad_line(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text(_chat(1, 2) + '\n{"messages": [{"role": "user", "content": "x"}]}\n')
    args = ["finetune", "--data", str(data), "--base", str(tmp_path), "--out-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no assistant message" in result.output and "jsonl:" in result.output
