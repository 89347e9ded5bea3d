"""`openk2 finetune`: one chat file to a LoRA model, with held-out eval before and after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
    base = _debug_base(tmp_path)
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
    adapter = out / "final" / "adapter"
    assert f"serve it: openk2 serve --model {base} --lora chats={adapter}" in result.output


def test_finetune_names_the_bad_line(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text(_chat(1, 2) + '\n{"messages": [{"role": "user", "content": "x"}]}\n')
    args = ["finetune", "--data", str(data), "--base", str(tmp_path), "--out-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no assistant message" in result.output and "jsonl:" in result.output


def _debug_base(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    save_model(build_model(get_preset("debug").replace(vocab_size=8192), seed=0), base)
    copy_tokenizer(resolve_tokenizer(), base)
    return base


PARAGRAPH = "The keeper of the lighthouse counts the ships at dawn and logs each one."


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_finetune_on_plain_text_trains_on_every_token(tmp_path: Path, suffix: str) -> None:
    """Plain text: paragraphs of a .txt file, or {"text": ...} JSONL lines; LM loss on all."""
    data = tmp_path / f"notes{suffix}"
    if suffix == ".txt":
        data.write_text("\n\n".join([PARAGRAPH] * 8) + "\n")
    else:
        data.write_text((json.dumps({"text": PARAGRAPH}) + "\n") * 8)
    out = tmp_path / "run"
    args = ["finetune", "--data", str(data), "--base", str(_debug_base(tmp_path)),
            "--lora-rank", "4", "--epochs", "2", "--out-dir", str(out), "--seq-len", "16",
            "--batch-size", "2", "--lr", "0.01", "--threads", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert set(report["after"]) == {"loss", "token_accuracy"}  # no chats, no exact match
    assert report["after"]["loss"] < report["before"]["loss"]
    held = (out / "data" / f"held_out{suffix}").read_text().strip()
    assert held == (PARAGRAPH if suffix == ".txt" else json.dumps({"text": PARAGRAPH}))
    assert (out / "final" / "adapter" / "adapter_model.safetensors").is_file()


def _fails_with(args: list[str], *needles: str) -> None:
    result = runner.invoke(app, ["finetune", *args])
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_finetune_plain_text_errors_name_the_file_and_line(tmp_path: Path) -> None:
    out = ["--out-dir", str(tmp_path / "run")]
    base = ["--base", str(tmp_path)]
    lines = tmp_path / "text.jsonl"
    lines.write_text(json.dumps({"text": "a"}) + "\n\n" + json.dumps({"txt": "b"}) + "\n")
    _fails_with(["--data", str(lines), *base, *out], "text.jsonl:3:", "string 'text'")
    unmarked = tmp_path / "chats.json"
    unmarked.write_text(_chat(1, 2) + "\n")
    _fails_with(["--data", str(unmarked), *base, *out], "chats.json", "rename it to .jsonl")
    _fails_with(["--data", str(tmp_path / "gone.txt"), *base, *out], "data file not found")
    one = tmp_path / "one.txt"
    one.write_text(PARAGRAPH + "\n")
    _fails_with(["--data", str(one), *base, *out], "one.txt", "at least 2 examples")


def test_finetune_refuses_a_base_that_is_not_a_model(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text(_chat(1, 2) + "\n" + _chat(2, 3) + "\n")
    args = ["--data", str(data), "--base", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path)]
    _fails_with(args, "base model not found", "nowhere")


def test_finetune_text_shorter_than_a_row_names_the_split(tmp_path: Path) -> None:
    data = tmp_path / "short.txt"
    data.write_text("one short note\n\nanother short note\n")
    args = ["--data", str(data), "--base", str(_debug_base(tmp_path)),
            "--out-dir", str(tmp_path / "run"), "--seq-len", "64", "--threads", "1"]  # fmt: skip
    _fails_with(args, "train.txt: only", "lower seq_len")
