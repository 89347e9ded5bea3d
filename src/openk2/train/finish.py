"""End of a run: last checkpoint, the final model in the base layout, the loss-curve PNG."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from openk2.tokenizer.resolve import copy_tokenizer
from openk2.train.checkpoint import latest_checkpoint, save_weights
from openk2.train.loop import Run, checkpoint
from openk2.train.lora import adapted_modules, merge_lora
from openk2.train.metrics import plot_loss
from openk2.train.peft_format import save_peft_adapter


def finish_run(run: Run) -> dict[str, Any]:
    """Save what a finished run leaves behind and return a summary for the CLI.

    - a resumable checkpoint of the last step (so the run can be extended with more steps);
    - `final/`: a complete, servable model: openk2's safetensors layout with LoRA adapters
      merged into the base, config.json, and the run's tokenizer files (`tiktoken.model`,
      `tokenizer_config.json`) the data was encoded with, bundled default included;
    - under LoRA, `final/adapter/`: the unmerged adapter in PEFT's format (when PEFT can
      express it: not with adapters on routed experts, see `peft_format`);
    - `loss.png` from `metrics.jsonl`.
    """
    latest = latest_checkpoint(run.out_dir)
    if latest is None or not latest.name.endswith(f"{run.step:08d}"):
        checkpoint(run)
    final = run.out_dir / "final"
    adapter = _save_adapter(run, final / "adapter") if adapted_modules(run.model) else {}
    merged = merge_lora(run.model)
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
    return summary | adapter


def _save_adapter(run: Run, out_dir: Path) -> dict[str, Any]:
    """The PEFT adapter folder, or why it was not written (the merged model is kept either way)."""
    try:
        save_peft_adapter(run.model, out_dir, base_model=_base_path(run))
    except ValueError as exc:
        shutil.rmtree(out_dir, ignore_errors=True)  # never leave an earlier run's adapter
        return {"peft_adapter_skipped": str(exc)}
    return {"peft_adapter": str(out_dir)}


def _base_path(run: Run) -> str | None:
    """The base model's directory for `base_model_name_or_path` (None for presets/embedded)."""
    path = run.cfg.model.path
    return str(Path(path).resolve()) if path and Path(path).is_dir() else None
