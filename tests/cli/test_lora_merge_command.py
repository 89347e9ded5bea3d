"""`openk2 lora-merge`: a PEFT adapter folded into its base gives a servable model."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model import build_model, get_preset
from openk2.model.weights import load_model, save_model
from openk2.tokenizer import resolve_tokenizer
from openk2.tokenizer.resolve import copy_tokenizer
from openk2.train.lora import apply_lora
from openk2.train.peft_format import save_peft_adapter

_register_commands()
runner = CliRunner()


def test_lora_merge_writes_a_servable_merged_model(tmp_path: Path) -> None:
    base_dir, adapter, out = tmp_path / "base", tmp_path / "adapter", tmp_path / "merged"
    model = build_model(get_preset("debug"), seed=0).float()
    save_model(model, base_dir)
    copy_tokenizer(resolve_tokenizer(), base_dir)
    apply_lora(model, targets=["q_b_proj", "o_proj"], rank=2, alpha=4.0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    save_peft_adapter(model, adapter)
    args = ["lora-merge", "--base", str(base_dir), "--adapter", str(adapter), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "merged 6 adapted modules" in result.output  # debug: 3 layers x 2 targets
    assert (out / "tiktoken.model").is_file()
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        torch.testing.assert_close(load_model(out)(ids), model(ids), atol=2e-5, rtol=1e-4)


def test_lora_merge_reports_a_missing_adapter(tmp_path: Path) -> None:
    args = ["lora-merge", "--base", str(tmp_path), "--adapter", str(tmp_path), "--out", "x"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no PEFT adapter config" in result.output
