"""Run files: YAML and TOML load into nested configs; typos and bad values are clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from openk2.train.config import TrainConfig, from_dict, load_config, to_dict

YAML = """
model: {preset: tiny, overrides: {vocab_size: 512}}
data: {kind: sft, train_files: [a.jsonl], seq_len: 128}
optim: {name: adamw, betas: [0.8, 0.9], qk_clip_tau: null}
schedule: {kind: cosine, warmup_steps: 3}
lora: {enabled: true, rank: 4}
steps: 7
"""


def test_yaml_and_toml_load_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(YAML)
    cfg = load_config(tmp_path / "run.yaml")
    assert cfg.model.overrides == {"vocab_size": 512}
    assert cfg.optim.betas == (0.8, 0.9) and cfg.optim.qk_clip_tau is None
    assert cfg.schedule.kind == "cosine" and cfg.lora.rank == 4 and cfg.steps == 7
    toml = 'steps = 7\n[model]\npreset = "tiny"\n[optim]\nbetas = [0.8, 0.9]\n'
    (tmp_path / "run.toml").write_text(toml)
    assert load_config(tmp_path / "run.toml").optim.betas == (0.8, 0.9)
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg


def test_unknown_keys_and_bad_values_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['stpes'\]"):
        from_dict(TrainConfig, {"stpes": 3})
    with pytest.raises(ValueError, match=r"\['lrr'\] in optim;"):
        from_dict(TrainConfig, {"optim": {"lrr": 1.0}})
    with pytest.raises(ValueError, match="steps must be positive"):
        from_dict(TrainConfig, {"steps": 0})
    with pytest.raises(ValueError, match="must be a mapping"):
        from_dict(TrainConfig, {"data": [1]})
    with pytest.raises(ValueError, match="decay_fraction"):
        from_dict(TrainConfig, {"schedule": {"decay_fraction": 2.0}})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match=".yaml, .yml or .toml"):
        load_config(tmp_path / "x.json")


@pytest.mark.parametrize("name", ["train/tiny_sft.yaml", "train/tiny_pretrain.toml",
                                  "train/lora.yaml", "embedded/stage1.yaml",
                                  "embedded/stage2.yaml", "embedded/stage3.yaml",
                                  "embedded/stage4.yaml"])
def test_example_run_files_are_valid(name: str) -> None:
    path = Path(__file__).parents[2] / "examples" / name
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # examples use the canonical spellings
        cfg = load_config(path)
    assert cfg.steps > 0 and cfg.data.train_files


def test_precision_uses_the_dtype_vocabulary_and_old_spellings_warn(tmp_path: Path) -> None:
    assert TrainConfig().precision == "float32"
    assert from_dict(TrainConfig, {"precision": "bfloat16"}).precision == "bfloat16"
    (tmp_path / "old.yaml").write_text("precision: bf16\n")
    with pytest.warns(FutureWarning, match="precision 'bf16' is deprecated; write 'bfloat16'"):
        assert load_config(tmp_path / "old.yaml").precision == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16"):
        from_dict(TrainConfig, {"precision": "float16"})
