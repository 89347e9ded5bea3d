"""Shared fixtures: a byte-level toy codec (fits the debug preset's 512-token vocab) and data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openk2.train.config import DataConfig, ModelSpec, OptimConfig, TrainConfig
from openk2.train.optim.schedule import ScheduleConfig
from openk2.train.text import TextCodec

EOS, PAD = 256, 257


@dataclass
class ToySegment:
    text: str
    trainable: bool


def _render(messages: list[dict[str, Any]], tools: Any = None) -> list[ToySegment]:
    out = []
    for m in messages:
        out.append(ToySegment(f"<{m['role']}>", False))
        out.append(ToySegment(str(m.get("content", "")) + "\n", m["role"] == "assistant"))
    return out


@pytest.fixture
def byte_codec() -> TextCodec:
    return TextCodec(
        encode=lambda text: list(text.encode()),
        render=_render,
        eos_id=EOS,
        pad_id=PAD,
        vocab_size=258,
    )


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    return path


def debug_config(text_file: Path, out_dir: Path, **overrides: Any) -> TrainConfig:
    """A few-second debug-preset run on the toy corpus."""
    base: dict[str, Any] = dict(
        model=ModelSpec(preset="debug"),
        data=DataConfig(kind="pretrain", train_files=[str(text_file)], seq_len=32),
        optim=OptimConfig(lr=0.02, qk_clip_tau=100.0),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=1),
        steps=4,
        batch_size=2,
        grad_accum=2,
        out_dir=str(out_dir),
        ckpt_interval=2,
        seed=0,
    )
    base.update(overrides)
    return TrainConfig(**base)
