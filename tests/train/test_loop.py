"""The loop on the debug preset: it learns, logs, checkpoints, and resumes bit-identically."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch

from openk2.train.build import build_run
from openk2.train.checkpoint import latest_checkpoint
from openk2.train.config import TrainConfig
from openk2.train.finish import finish_run
from openk2.train.loop import steps, train
from openk2.train.lora import adapted_modules
from openk2.train.metrics import read_metrics
from openk2.train.text import TextCodec

from .conftest import debug_config


def test_loss_falls_and_run_leaves_metrics_plot_and_final_model(
    tmp_path: Path, text_file: Path, byte_codec: TextCodec
) -> None:
    cfg = debug_config(text_file, tmp_path / "run", steps=12, ckpt_interval=0)
    run = build_run(cfg, codec=byte_codec)
    history = train(run)
    assert history[-1].loss < history[0].loss - 1.0
    assert all(math.isfinite(m.max_logit) and m.load_imbalance >= 1.0 for m in history)
    summary = finish_run(run)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert (tmp_path / "run" / "loss.png").is_file()
    assert not (tmp_path / "run" / "final" / "tiktoken.model").exists()  # toy codec: no files
    from openk2.model.weights import load_model

    final = load_model(summary["final_model"], dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(final(ids), run.model.eval()(ids))


def test_resume_gives_bit_identical_next_steps(
    tmp_path: Path, text_file: Path, byte_codec: TextCodec
) -> None:
    full = build_run(debug_config(text_file, tmp_path / "a"), codec=byte_codec)
    full_losses = [m.loss for m in train(full)]

    first = build_run(debug_config(text_file, tmp_path / "b"), codec=byte_codec)
    list(itertools.islice(steps(first), 2))  # stop after the step-2 checkpoint
    assert latest_checkpoint(tmp_path / "b") is not None
    torch.manual_seed(1234)  # disturb the RNG: resume must restore it

    resumed = build_run(debug_config(text_file, tmp_path / "b"), codec=byte_codec)
    assert resumed.step == 2
    resumed_losses = [m.loss for m in train(resumed)]
    assert resumed_losses == full_losses[2:]
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    for key, value in full_state.items():
        assert torch.equal(value, resumed_state[key]), key
    steps_logged = [r["step"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl")]
    assert steps_logged == [1, 2, 3, 4]


def test_lora_run_trains_adapters_only_resumes_and_saves_merged(
    tmp_path: Path, text_file: Path, byte_codec: TextCodec
) -> None:
    from openk2.train.config import LoRAConfig

    lora = LoRAConfig(enabled=True, rank=2, targets=["q_b_proj", "up_proj"])

    def cfg(out: str) -> TrainConfig:
        return debug_config(
            text_file, tmp_path / out, steps=3, ckpt_interval=1, grad_accum=1, lora=lora
        )

    full = build_run(cfg("a"), codec=byte_codec)
    base = {k: v.clone() for k, v in full.model.state_dict().items() if "lora" not in k}
    full_losses = [m.loss for m in train(full)]
    frozen = {k: v for k, v in full.model.state_dict().items() if "lora" not in k}
    assert all(torch.equal(base[k], frozen[k]) for k in base)  # base, router bias untouched

    part = build_run(cfg("b"), codec=byte_codec)
    list(itertools.islice(steps(part), 2))
    resumed = build_run(cfg("b"), codec=byte_codec)
    assert resumed.step == 2 and [m.loss for m in train(resumed)] == full_losses[2:]

    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        adapted = full.model(ids)
    n_adapted = len(adapted_modules(full.model))
    summary = finish_run(full)
    assert summary["merged_lora_modules"] == n_adapted > 3
    from openk2.model.weights import load_model

    merged = load_model(summary["final_model"], dtype=torch.float32)
    assert set(merged.state_dict()) == set(base)
    with torch.no_grad():
        torch.testing.assert_close(merged(ids), adapted, atol=2e-5, rtol=1e-4)
    assert "routed experts" in summary["peft_adapter_skipped"]  # up_proj hit routed experts


def test_lora_run_leaves_peft_adapter_beside_merged_model(
    tmp_path: Path, text_file: Path, byte_codec: TextCodec
) -> None:
    from openk2.model.weights import load_model
    from openk2.train.config import LoRAConfig
    from openk2.train.peft_format import load_peft_adapter

    lora = LoRAConfig(enabled=True, rank=2, targets=["q_b_proj", "up_proj"], routed_experts=False)
    cfg = debug_config(text_file, tmp_path / "r", steps=2, ckpt_interval=0, grad_accum=1, lora=lora)
    run = build_run(cfg, codec=byte_codec)
    base = {k: v.clone() for k, v in run.model.state_dict().items() if "lora" not in k}
    train(run)
    assert not any(".mlp.experts." in n for n, _ in adapted_modules(run.model))
    summary = finish_run(run)
    adapter = tmp_path / "r" / "final" / "adapter"
    assert summary["peft_adapter"] == str(adapter)
    ids = torch.tensor([[5, 6, 7, 8]])
    merged = load_model(summary["final_model"], dtype=torch.float32)  # still servable
    fresh = load_model(summary["final_model"], dtype=torch.float32)
    fresh.load_state_dict(base)
    load_peft_adapter(fresh, adapter)
    with torch.no_grad():
        torch.testing.assert_close(fresh(ids), merged(ids), atol=2e-5, rtol=1e-4)


def test_target_loss_equals_full_logits_loss_with_the_same_gradients() -> None:
    from openk2.model import build_model, get_preset
    from openk2.train.data import IGNORE
    from openk2.train.loop import lm_loss_sum, target_loss_sum

    model = build_model(get_preset("debug"), seed=0)
    inputs = torch.randint(0, 512, (2, 12))
    labels = inputs.roll(-1, dims=1)
    labels[:, :7] = IGNORE
    full = lm_loss_sum(model(inputs), labels)
    full.backward()
    # an expert no token was routed to has no gradient, on both paths alike
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    part = target_loss_sum(model, inputs, labels, "fp32")
    part.backward()
    assert torch.allclose(part, full, atol=1e-5)
    for g, p in zip(grads, model.parameters(), strict=True):
        assert (g is None) == (p.grad is None)
        assert g is None or torch.allclose(g, p.grad, atol=1e-6)
