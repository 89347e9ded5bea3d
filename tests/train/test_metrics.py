"""Metrics jsonl survives resumes and plots to a PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from openk2.train.metrics import MetricsLog, StepMetrics, plot_loss, read_metrics


def _m(step: int, loss: float) -> StepMetrics:
    return StepMetrics(step=step, loss=loss, lr=0.1, grad_norm=1.0, tokens=8, targets=8,
                       tokens_per_s=10.0, max_logit=float("nan"), clipped_heads=0,
                       load_imbalance=1.0, seconds=0.1)  # fmt: skip


def test_log_truncates_on_resume_and_plots(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl")
    for s in range(1, 6):
        log.write(_m(s, 5.0 - s))
    log.truncate_after(3)
    log.write(_m(4, 0.5))
    rows = read_metrics(tmp_path / "m.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["loss"] == 0.5
    assert rows[0]["max_logit"] is None
    plot_loss(tmp_path / "m.jsonl", tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_losses_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text("")
    with pytest.raises(ValueError, match="no loss"):
        plot_loss(tmp_path / "m.jsonl", tmp_path / "loss.png")
