"""`openk2 inspect` and `openk2 generate` from the command line (in process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.model import get_preset

_register_commands()
runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """`openk2 generate --threads` sets a process-wide value; keep it local to each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_inspect_kimi_k26_reports_1_03t_total_and_32b_active() -> None:
    result = runner.invoke(app, ["inspect", "--preset", "kimi-k2.6"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "1.03T total" in result.output and "31.69B active" in result.output
    assert "routed experts" in result.output


def test_inspect_reads_a_checkpoint_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(get_preset("small").to_hf_json()))
    result = runner.invoke(app, ["inspect", "--model", str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "169.27M total" in result.output
    assert "tokenizer: none usable (model directory" in result.output


def test_inspect_names_the_tokenizer_serve_would_use() -> None:
    from openk2.embedded import model_dir

    result = runner.invoke(app, ["inspect", "--model", str(model_dir())], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"tokenizer: {model_dir() / 'tiktoken.model'} (model), 8192 ids" in result.output


def test_inspect_errors_are_clear(tmp_path: Path) -> None:
    assert "exactly one" in runner.invoke(app, ["inspect"]).output
    assert "unknown preset" in runner.invoke(app, ["inspect", "--preset", "nope"]).output
    assert "not found" in runner.invoke(app, ["inspect", "--model", str(tmp_path)]).output


def test_generate_from_a_preset_is_seeded() -> None:
    args = ["generate", "--model", "debug", "--prompt-ids", "1,2,3", "--max-new-tokens", "5"]
    first = runner.invoke(app, [*args, "--temperature", "1.0", "--seed", "4"])
    second = runner.invoke(app, [*args, "--temperature", "1.0", "--seed", "4"])
    assert first.exit_code == 0, first.output
    ids = first.stdout.strip().splitlines()[0].split(",")
    assert 1 <= len(ids) <= 5 and all(0 <= int(t) < 512 for t in ids)
    assert first.stdout == second.stdout


def test_generate_rejects_bad_input() -> None:
    base = ["generate", "--prompt-ids", "1,2"]
    out = runner.invoke(app, [*base, "--model", "no/such"]).output
    assert "is neither" in out and "a preset" in out
    bad_ids = ["generate", "--model", "debug", "--prompt-ids", "1,x"]
    assert "comma-separated" in runner.invoke(app, bad_ids).output
    out_of_vocab = ["generate", "--model", "debug", "--prompt-ids", "999"]
    assert "vocabulary" in runner.invoke(app, out_of_vocab).output
    bad_dtype = [*base, "--model", "debug", "--dtype", "int8"]
    assert "--dtype" in runner.invoke(app, bad_dtype).output
    bad_format = [*base, "--model", "debug", "--decode-format", "int4"]
    assert "decode format" in runner.invoke(app, bad_format).output


def test_generate_with_int8_decode_tables() -> None:
    args = ["generate", "--model", "debug", "--prompt-ids", "1,2,3", "--max-new-tokens", "4"]
    result = runner.invoke(app, [*args, "--decode-format", "int8"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()[0].split(",")) == 4


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_generate_with_quantized_weights(quant: str) -> None:
    from openk2.model.quant.packed import packed_kernels_available

    if not packed_kernels_available():
        pytest.skip("torch build lacks the packed CPU kernels")
    args = ["generate", "--model", "debug", "--prompt-ids", "1,2,3", "--max-new-tokens", "4"]
    result = runner.invoke(app, [*args, "--dtype", "bfloat16", "--quant", quant])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()[0].split(",")) == 4


def test_generate_rejects_an_unknown_quant() -> None:
    args = ["generate", "--model", "debug", "--prompt-ids", "1,2", "--quant", "int3"]
    assert "--quant" in runner.invoke(app, args).output


def test_generate_from_text_decodes_with_the_bundled_tokenizer() -> None:
    from openk2.tokenizer import default_tokenizer

    args = ["generate", "--model", "tiny", "--prompt", "def add(a, b):", "--max-new-tokens", "6"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.stdout.splitlines()[0]
    assert text and len(default_tokenizer().encode(text)) <= 12
    assert runner.invoke(app, args).stdout == result.stdout


def test_generate_text_needs_a_tokenizer_that_fits_the_vocabulary(tmp_path: Path) -> None:
    too_big = ["generate", "--model", "debug", "--prompt", "hi"]
    assert "vocab_size is 512" in runner.invoke(app, too_big).output
    both = ["generate", "--model", "debug", "--prompt", "hi", "--prompt-ids", "1"]
    assert "exactly one" in runner.invoke(app, both).output


def test_generate_reports_a_corrupt_checkpoint_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(get_preset("debug").to_hf_json()))
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    args = ["generate", "--model", str(tmp_path), "--prompt-ids", "1"]
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code != 0
    assert "model.safetensors" in result.output and "Traceback" not in result.output


def test_inspect_context_prints_cache_and_flops_for_256k_and_2m() -> None:
    args = ["inspect", "--preset", "kimi-k2.6", "--context", "256K", "--context", "2M"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "262,144" in result.output and "2,097,152" in result.output
    assert "17.2 GiB" in result.output and "137.2 GiB" in result.output
    assert "1.02e+17" in result.output  # naive prefill FLOPs at 256K (attention + linear)
    assert "beyond max_position_embeddings" in result.output


def test_inspect_context_rejects_a_bad_length() -> None:
    result = runner.invoke(app, ["inspect", "--preset", "debug", "--context", "lots"])
    assert result.exit_code != 0
    assert "not a token count" in result.output
