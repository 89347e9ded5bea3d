"""End of a run: last checkpoint, the final model in the base layout, the loss-curve PNG."""

from __future__ import annotations

from typing import Any

from openk2.tokenizer.resolve import copy_tokenizer
from openk2.train.checkpoint import latest_checkpoint, save_weights
from openk2.train.loop import Run, checkpoint
from openk2.train.lora import merge_lora
from openk2.train.metrics import plot_loss


def finish_run(run: Run) -> dict[str, Any]:
    """Save what a finished run leaves behind and return a summary for the CLI.

    - a resumable checkpoint of the last step (so the run can be extended with more steps);
    - `final/`: a complete, servable model: openk2's safetensors layout with LoRA adapters
      merged into the base, config.json, and the run's tokenizer files (`tiktoken.model`,
      `tokenizer_config.json`) the data was encoded with, bundled default included;
    - `loss.png` from `metrics.jsonl`.
    """
    latest = latest_checkpoint(run.out_dir)
    if latest is None or not latest.name.endswith(f"{run.step:08d}"):
        checkpoint(run)
    merged = merge_lora(run.model)
    final = run.out_dir / "final"
    save_weights(run.model, final)
    if run.tokenizer is not None:
        copy_tokenizer(run.tokenizer, final)
    metrics = run.out_dir / "metrics.jsonl"
    summary: dict[str, Any] = {"steps": run.step, "final_model": str(final)}
    if metrics.is_file() and metrics.stat().st_size:
        plot_loss(metrics, run.out_dir / "loss.png", title=f"{run.out_dir.name}: training loss")
        summary["loss_plot"] = str(run.out_dir / "loss.png")
    if run.history:
        summary["final_loss"] = round(run.history[-1].loss, 4)
    if merged:
        summary["merged_lora_modules"] = merged
    return summary
