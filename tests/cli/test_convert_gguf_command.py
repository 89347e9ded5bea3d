"""`openk2 convert --to gguf`: the embedded model becomes a GGUF; bad requests are clear errors
that leave nothing behind; q4_k_m runs llama-quantize on an f16 export."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gguf
import pytest
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.export.gguf.llama_quantize import LLAMA_QUANTIZE_ENV

_register_commands()
runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})

FAKE_QUANTIZE = """#!{python}
import shutil, sys
from pathlib import Path
source, target, kind = sys.argv[1:4]
Path(sys.argv[0] + ".args").write_text(kind + " " + Path(source).name)
if {fail}:
    sys.exit("llama_model_quantize: failed to quantize")
shutil.copyfile(source, target)
"""


def _convert(out: Path, *extra: str):
    return runner.invoke(app, ["convert", "--model", "embedded", "--to", "gguf",
                               "--out", str(out), *extra])


def test_embedded_to_q8_0(tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    result = _convert(out, "--quant", "q8_0")
    assert result.exit_code == 0, result.output
    assert "wrote 70 tensors" in result.output
    reader = gguf.GGUFReader(out)
    assert reader.fields["general.architecture"].contents() == "deepseek2"
    assert [f.name for f in tmp_path.iterdir()] == ["m.gguf"]


@pytest.mark.parametrize(("args", "message"), [
    (["--quant", "q3"], "use one of f32, f16, bf16, q8_0, q4_0, q4_k_m"),
    (["--to", "onnx"], "use safetensors or gguf"),
    (["--dtype", "fp32"], "a GGUF's tensor types come from --quant"),
])
def test_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = _convert(tmp_path / "m.gguf", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not any(tmp_path.iterdir())


def test_a_preset_has_no_tokenizer_to_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", "--model", "debug", "--to", "gguf",
                                 "--out", str(tmp_path / "m.gguf")])
    assert result.exit_code == 2
    assert "not a checkpoint directory with a tiktoken.model" in result.output


def test_out_must_be_a_gguf_file(tmp_path: Path) -> None:
    result = _convert(tmp_path / "model")
    assert result.exit_code == 2
    assert "should be a .gguf file" in result.output


def test_q4_k_m_without_llama_quantize_says_how_to_get_it(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LLAMA_QUANTIZE_ENV, str(tmp_path / "no-such-llama-quantize"))
    result = _convert(tmp_path / "m.gguf", "--quant", "q4_k_m")
    assert result.exit_code == 2
    assert "q4_k_m needs llama.cpp's quantizer" in result.output
    assert not (tmp_path / "m.gguf").exists()


def _fake_tool(tmp_path: Path, fail: bool) -> Path:
    tool = tmp_path / "llama-quantize"
    tool.write_text(FAKE_QUANTIZE.format(python=sys.executable, fail=fail))
    tool.chmod(0o755)
    return tool


def test_q4_k_m_quantizes_an_f16_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = _fake_tool(tmp_path, fail=False)
    monkeypatch.setenv(LLAMA_QUANTIZE_ENV, str(tool))
    out = tmp_path / "out" / "m.gguf"
    result = _convert(out, "--quant", "q4_k_m")
    assert result.exit_code == 0, result.output
    assert Path(str(tool) + ".args").read_text() == "Q4_K_M m.gguf"
    file_type = gguf.GGUFReader(out).fields["general.file_type"].contents()
    assert file_type == int(gguf.LlamaFileType.MOSTLY_F16)  # what the fake tool copied
    assert os.listdir(out.parent) == ["m.gguf"]


def test_a_failed_llama_quantize_leaves_nothing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LLAMA_QUANTIZE_ENV, str(_fake_tool(tmp_path, fail=True)))
    out = tmp_path / "out" / "m.gguf"
    result = _convert(out, "--quant", "q4_k_m")
    assert result.exit_code == 2
    assert "llama-quantize failed (1): llama_model_quantize: failed to quantize" in result.output
    assert os.listdir(out.parent) == []
