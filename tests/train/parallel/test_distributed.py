"""2-process FSDP2 + expert-parallel training on CPU (gloo) against the one-process trainer.

One module fixture runs the whole story through `openk2 train --nproc`, three torchrun
launches of the debug preset: 2 ranks for steps 1-2, resumed on 1 rank for steps 3-4 (a
2-rank DCP checkpoint resharded to 1), resumed on 2 ranks for steps 5-6 (1 → 2). QK-Clip's
threshold sits under the debug model's logits so every step clips heads on gathered matrices,
and Muon orthogonalises the gathered FSDP shards: the losses, clip counts and the exported
`final/` must match one uninterrupted in-process run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openk2.train.build import build_run
from openk2.train.config import load_config
from openk2.train.loop import train

RUN = """
model: {preset: debug, overrides: {vocab_size: 8192}}
data: {kind: pretrain, train_files: ["%s"], seq_len: 32}
optim: {lr: 0.02, qk_clip_tau: 0.05}
schedule: {kind: constant, warmup_steps: 1}
steps: 6
batch_size: 4
ckpt_interval: 2
keep_checkpoints: 3
out_dir: "%s"
"""
LAUNCH_TIMEOUT_S = 240


def launch(config: Path, nproc: int, steps: int) -> None:
    """`openk2 train --nproc` in its own session, killed whole if it outlives the timeout."""
    cmd = [sys.executable, "-m", "openk2", "train", "--config", str(config),
           "--nproc", str(nproc), "--steps", str(steps)]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        assert proc.wait(timeout=LAUNCH_TIMEOUT_S) == 0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def metrics(run_dir: Path) -> list[dict[str, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("dist")
    corpus = root / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    (root / "dist.yaml").write_text(RUN % (corpus, root / "dist"))
    (root / "ref.yaml").write_text(RUN % (corpus, root / "ref"))
    ref = build_run(load_config(root / "ref.yaml"))
    history = train(ref)
    launch(root / "dist.yaml", nproc=2, steps=2)
    after_two = sorted(p.name for p in (root / "dist" / "checkpoints").iterdir())
    launch(root / "dist.yaml", nproc=1, steps=4)
    launch(root / "dist.yaml", nproc=2, steps=6)
    return {"ref": ref, "history": history, "dist": root / "dist", "after_two": after_two}


def test_two_rank_curve_and_both_reshards_match_one_process(runs: dict) -> None:
    got = metrics(runs["dist"])
    want = runs["history"]
    assert [r["step"] for r in got] == list(range(1, 7))
    losses = torch.tensor([r["loss"] for r in got])
    ref = torch.tensor([m.loss for m in want])
    torch.testing.assert_close(losses, ref, rtol=1e-4, atol=1e-5)
    assert losses[-1] < losses[0] - 1.0
    assert [r["clipped_heads"] for r in got] == [m.clipped_heads for m in want]
    assert sum(m.clipped_heads for m in want) > 0  # QK-Clip ran on gathered shards


def test_checkpoints_are_dcp_shards_with_trainer_state(runs: dict) -> None:
    assert runs["after_two"] == ["step_00000002"]
    step = runs["dist"] / "checkpoints" / "step_00000004"
    assert (step / "dcp" / ".metadata").is_file() and (step / "trainer.pt").is_file()
    assert torch.load(step / "trainer.pt", weights_only=True)["world"] == 1
    six = runs["dist"] / "checkpoints" / "step_00000006" / "trainer.pt"
    assert torch.load(six, weights_only=True)["world"] == 2


def test_final_export_is_the_hf_layout_of_the_same_model(runs: dict) -> None:
    from openk2.model.weights import load_model

    final = load_model(runs["dist"] / "final", dtype=torch.float32).eval()
    ref = runs["ref"].model.eval()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(final.state_dict()[key], value, rtol=1e-3, atol=1e-4)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(final(ids), ref(ids), rtol=1e-3, atol=1e-4)


def test_one_process_trainer_refuses_a_dcp_checkpoint(runs: dict, tmp_path: Path) -> None:
    cfg = load_config(runs["dist"].parent / "dist.yaml")
    with pytest.raises(ValueError, match="--nproc"):
        build_run(cfg)
