"""The training run configuration: slotted, keyword-only dataclasses loaded from YAML or TOML.

A run file mirrors the nesting below, e.g. (YAML)::

    model: {preset: tiny}
    data: {kind: sft, train_files: [data/train.jsonl], seq_len: 512}
    optim: {name: muonclip, lr: 0.02, qk_clip_tau: 100}
    schedule: {kind: wsd, warmup_steps: 50}
    steps: 2000
    batch_size: 8
    grad_accum: 4
    out_dir: runs/tiny-sft

Unknown keys are errors (with the valid keys listed), so a typo never silently falls back to a
default. `to_dict` gives the inverse, stored with every checkpoint.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from openk2.model.dtypes import canonical_dtype
from openk2.train.optim.schedule import ScheduleConfig

TRAIN_PRECISIONS = ("float32", "bfloat16")
"""The `precision` values a run supports (CPU autocast has no float16 path worth using)."""


@dataclass(kw_only=True, slots=True)
class ModelSpec:
    """Which model to train and how to build it."""

    preset: str | None = "debug"
    """A `openk2.model.config` preset (debug, tiny, small, ...); ignored when `path` is set."""
    path: str | None = None
    """A saved model directory (openk2 safetensors layout) to start from instead of a preset;
    `openk2 train` also accepts `embedded`, the shipped model."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """ModelConfig fields to override on the preset (e.g. vocab_size to match a tokenizer)."""


@dataclass(kw_only=True, slots=True)
class DataConfig:
    """Where the training tokens come from."""

    kind: Literal["pretrain", "sft"] = "pretrain"
    """'pretrain': packed plain text (.txt / .jsonl with a "text" field); 'sft': OpenAI-format
    chats (.jsonl with "messages" and optional "tools"), loss on assistant tokens only."""
    train_files: list[str] = field(default_factory=list)
    """Input files or glob patterns."""
    seq_len: int = 256
    """Tokens per training row (the model sees seq_len inputs and predicts seq_len targets)."""
    tokenizer: str | None = None
    """Tokenizer file or directory; None uses openk2's bundled default tokenizer."""
    pack: bool = True
    """SFT: pack several whole chats into one row (True) or one chat per row, padded."""
    thinking: bool = True
    """SFT: render chats with thinking enabled (K2.6 default)."""
    preserve_thinking: bool = False
    """SFT: keep reasoning on every assistant turn (K2.6 `preserve_thinking`)."""
    shuffle: bool = True
    """Reshuffle rows every epoch (seeded, so resuming reproduces the order)."""


@dataclass(kw_only=True, slots=True)
class OptimConfig:
    """MuonClip (Muon + AdamW + QK-Clip) or the plain AdamW baseline."""

    name: Literal["muonclip", "adamw"] = "muonclip"
    """'muonclip' sends hidden matrices to Muon; 'adamw' sends everything to AdamW."""
    lr: float = 0.02
    """Peak LR for Muon groups (and AdamW groups unless adamw_lr is set)."""
    adamw_lr: float | None = None
    """Peak LR for AdamW groups; None reuses lr."""
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices and embeddings (K2: 0.1)."""
    momentum: float = 0.95
    """Muon momentum."""
    nesterov: bool = True
    """Nesterov momentum for Muon."""
    ns_steps: int = 5
    """Newton–Schulz iterations."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value; None disables clipping."""
    qk_clip_tau: float | None = 100.0
    """QK-Clip threshold τ on the per-head max logit; None disables QK-Clip."""
    router_bias_rate: float = 1e-3
    """Aux-loss-free balancing: per-step change of each router bias (0 disables it)."""


@dataclass(kw_only=True, slots=True)
class LoRAConfig:
    """Low-rank adapters on attention and expert projections."""

    enabled: bool = False
    """Train only LoRA adapters; the base weights stay frozen."""
    rank: int = 8
    """Adapter rank r."""
    alpha: float = 16.0
    """Scale: the adapter output is multiplied by alpha / rank."""
    targets: list[str] = field(
        default_factory=lambda: [
            "q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
            "gate_proj", "up_proj", "down_proj",
        ]
    )  # fmt: skip
    """Module names (last path component) that get an adapter."""
    routed_experts: bool = True
    """Also adapt routed experts (`mlp.experts.{E}.*`). PEFT/transformers cannot express those
    (transformers fuses experts), so `final/adapter/` in PEFT format needs this off."""


@dataclass(kw_only=True, slots=True)
class ParallelConfig:
    """How a run launched on several processes (`openk2 train --nproc N`) splits the model."""

    expert_parallel: bool = True
    """Spread each MoE layer's routed experts over the ranks (all-to-all token exchange);
    False keeps every expert on every rank, FSDP-sharded like the dense weights."""
    activation_checkpointing: bool = False
    """Recompute each decoder layer in the backward instead of storing its activations (also
    in a single process): less memory for ~1/3 more compute."""


@dataclass(kw_only=True, slots=True)
class TrainConfig:
    """One training run."""

    model: ModelSpec = field(default_factory=ModelSpec)
    """The model to train."""
    data: DataConfig = field(default_factory=DataConfig)
    """The training data."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and post-step hooks."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """LR schedule."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """LoRA fine-tuning (off by default)."""
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    """Multi-process layout (used by `--nproc`; activation checkpointing everywhere)."""
    steps: int = 100
    """Optimizer steps."""
    batch_size: int = 8
    """Rows per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (tokens per step = batch_size·grad_accum·seq_len)."""
    seed: int = 0
    """Seeds model init, data order and every RNG the run uses."""
    out_dir: str = "runs/train"
    """Run directory: checkpoints/, metrics.jsonl, loss.png, final/."""
    ckpt_interval: int = 0
    """Save a resumable checkpoint every N steps (0: only at the end)."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (older ones are deleted)."""
    resume: bool = True
    """Continue from the newest checkpoint in out_dir when one exists."""
    log_interval: int = 1
    """Write a metrics line every N steps."""
    precision: Literal["float32", "bfloat16"] = "float32"
    """'bfloat16' runs forward/backward under bf16 autocast; float32 is faster on AVX2-only CPUs.
    The old spellings fp32/bf16 are accepted with a deprecation warning (`openk2.model.dtypes`)."""
    threads: int | None = None
    """torch intra-op threads; None keeps torch's default."""

    def __post_init__(self) -> None:
        _positive(steps=self.steps, batch_size=self.batch_size, grad_accum=self.grad_accum)
        _positive(seq_len=self.data.seq_len, log_interval=self.log_interval)
        if self.ckpt_interval < 0 or self.keep_checkpoints < 1:
            raise ValueError("ckpt_interval must be >= 0 and keep_checkpoints >= 1")
        if self.model.path is None and self.model.preset is None:
            raise ValueError("model needs a preset or a path")
        self.precision = canonical_dtype(  # type: ignore[assignment]
            self.precision, what="precision", allowed=TRAIN_PRECISIONS
        )


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def load_config(path: str | Path) -> TrainConfig:
    """Read a .yaml/.yml/.toml run file into a validated TrainConfig."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        raw = yaml.safe_load(text) or {}
    elif path.suffix == ".toml":
        raw = tomllib.loads(text)
    else:
        raise ValueError(f"config must be .yaml, .yml or .toml, got {path.name}")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the top level must be a mapping")
    return from_dict(TrainConfig, raw)


T = typing.TypeVar("T")


def from_dict(cls: type[T], raw: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping, recursing into nested config dataclasses."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(names))
    section = where.rstrip(".") or "top level"
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} in {section}; valid: {names}")
    kwargs = {k: _coerce(hints[k], v, f"{where}{k}") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad config in {section}: {exc}") from exc


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Turn YAML/TOML values into what the field's type expects (nested configs, tuples)."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
        return from_dict(hint, value, where + ".")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and value is not None:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner[0], value, where) if len(inner) == 1 else value
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """The inverse of `from_dict` (tuples become lists, so the result is YAML/JSON-ready)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
