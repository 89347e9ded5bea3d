"""Per-step training metrics: one JSON line per logged step, and a loss-curve PNG at the end.

The jsonl is append-only and survives resumes: on resume, lines past the checkpoint's step are
dropped first, so the file always describes exactly one run history.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(kw_only=True, slots=True)
class StepMetrics:
    """What one optimizer step reports."""

    step: int
    """1-based optimizer step just completed."""
    loss: float
    """Mean cross-entropy over the step's target tokens."""
    lr: float
    """LR of the first group during the step."""
    grad_norm: float
    """Global gradient norm before clipping."""
    tokens: int
    """Input tokens processed in the step (padding included)."""
    targets: int
    """Tokens that carried a loss."""
    tokens_per_s: float
    """Input tokens per second of wall time for the step."""
    max_logit: float
    """Largest per-head max pre-softmax logit seen in the step (nan if not recorded)."""
    clipped_heads: int
    """Heads rescaled by QK-Clip after the step."""
    load_imbalance: float
    """Worst max(load)/mean(load) across MoE routers (1.0 = even; nan without MoE)."""
    seconds: float
    """Wall time of the step."""


class MetricsLog:
    """Appends StepMetrics as JSON lines to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> None:
        """Drop lines with step > `step` (left over from a run that resumed earlier)."""
        if not self.path.exists():
            return
        keep = [r for r in read_metrics(self.path) if r["step"] <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")

    def write(self, metrics: StepMetrics) -> None:
        row = {k: _finite(v) for k, v in asdict(metrics).items()}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All rows of a metrics jsonl."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(
    curves: dict[str, tuple[list[float], list[float]]],
    path: Path,
    *,
    title: str,
    xlabel: str = "step",
    ylabel: str = "loss",
) -> None:
    """Draw named (x, y) curves into one PNG with matplotlib's Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=name, linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_loss(metrics_path: Path, png_path: Path, title: str = "training loss") -> None:
    """The loss curve of one run's metrics jsonl."""
    rows = [r for r in read_metrics(metrics_path) if r.get("loss") is not None]
    if not rows:
        raise ValueError(f"{metrics_path} has no loss values to plot")
    plot_curves(
        {"loss": ([r["step"] for r in rows], [r["loss"] for r in rows])}, png_path, title=title
    )
