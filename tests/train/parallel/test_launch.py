"""The torchrun command line, the refusals made before any process starts, and activation
checkpointing (which also runs in one process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openk2.train.build import build_run
from openk2.train.config import LoRAConfig, ParallelConfig
from openk2.train.loop import train
from openk2.train.parallel.build import check_parallel_config
from openk2.train.parallel.launch import LaunchOptions, torchrun_command, worker_args
from openk2.train.text import TextCodec

from ..conftest import debug_config


def test_single_node_uses_standalone_rendezvous() -> None:
    args = worker_args(Path("run.yaml"), steps=3, out_dir=None, resume=True, model_path=None)
    cmd = torchrun_command(LaunchOptions(nproc=2), args)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[3:6] == ["--nproc-per-node", "2", "--standalone"]
    assert cmd[6:] == ["-m", "openk2.train.parallel.launch", "--config", "run.yaml",
                       "--resume", "--steps", "3"]  # fmt: skip


def test_multi_node_flags_pass_through() -> None:
    opts = LaunchOptions(nproc=8, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29600)
    cmd = torchrun_command(opts, ["--config", "r.yaml"])
    joined = " ".join(cmd)
    assert "--nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29600" in joined
    assert "--standalone" not in cmd


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nproc": 2, "nnodes": 2}, "master-addr"),
        ({"nproc": 0}, "at least 1"),
        ({"nproc": 2, "nnodes": 2, "node_rank": 2, "master_addr": "h"}, "node-rank"),
    ],
)
def test_bad_launch_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LaunchOptions(**kwargs)


def test_parallel_config_refusals(tmp_path: Path, text_file: Path) -> None:
    cfg = debug_config(text_file, tmp_path, batch_size=3)
    with pytest.raises(ValueError, match="divide evenly over 2 ranks"):
        check_parallel_config(cfg, 2)
    cfg = debug_config(text_file, tmp_path, lora=LoRAConfig(enabled=True))
    with pytest.raises(ValueError, match="LoRA"):
        check_parallel_config(cfg, 2)


def test_activation_checkpointing_changes_no_number(
    tmp_path: Path, text_file: Path, byte_codec: TextCodec
) -> None:
    plain = train(build_run(debug_config(text_file, tmp_path / "a"), codec=byte_codec))
    ac = ParallelConfig(activation_checkpointing=True)
    cfg = debug_config(text_file, tmp_path / "b", parallel=ac)
    run = build_run(cfg, codec=byte_codec)
    recomputed = train(run)
    assert [m.loss for m in recomputed] == [m.loss for m in plain]
    assert [m.clipped_heads for m in recomputed] == [m.clipped_heads for m in plain]
    assert "model.layers.0.self_attn.q_a_proj.weight" in run.model.state_dict()
