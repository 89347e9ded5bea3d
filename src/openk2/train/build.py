"""Turn a TrainConfig into a ready `Run`: seeded model, data rows, optimizer, resumed state.

Order matters for exact reproducibility: seeds are set first, the model is initialised from the
run seed, LoRA adapters (if any) are attached and initialised next, and only then is a checkpoint
restored over all of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from openk2.train import hooks
from openk2.train.checkpoint import latest_checkpoint, load_checkpoint
from openk2.train.config import DataConfig, ModelSpec, OptimConfig, TrainConfig
from openk2.train.data import (
    BatchLoader,
    ChatRows,
    PackedText,
    RowDataset,
    expand_files,
    iter_chats,
)
from openk2.train.loop import Run
from openk2.train.lora import apply_lora
from openk2.train.optim.groups import GroupHyper, param_groups
from openk2.train.optim.muon import MuonAdamW
from openk2.train.parallel.fsdp import apply_activation_checkpointing
from openk2.train.text import TextCodec, load_codec, tokenizer_source

if TYPE_CHECKING:
    from openk2.tokenizer import TokenizerSource


def seed_everything(seed: int) -> None:
    """Seed torch and Python's RNGs (the only ones a run draws from)."""
    torch.manual_seed(seed)
    random.seed(seed)


def build_model_from_spec(spec: ModelSpec, seed: int) -> nn.Module:
    """A fresh preset model initialised from `seed`, or a saved model loaded in fp32."""
    from openk2.model.config import get_preset
    from openk2.model.model import build_model
    from openk2.model.weights import load_model

    if spec.path is not None:
        if spec.overrides:
            raise ValueError("model.overrides apply to presets only, not to a saved model path")
        return load_model(spec.path, dtype=torch.float32)
    assert spec.preset is not None
    try:
        config = get_preset(spec.preset)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from exc
    if spec.overrides:
        config = config.replace(**spec.overrides)
    return build_model(config, dtype=torch.float32, seed=seed)


def build_rows(cfg: DataConfig, codec: TextCodec) -> RowDataset:
    """Tokenised training rows for the configured data kind."""
    paths = expand_files(cfg.train_files)
    if cfg.kind == "pretrain":
        return PackedText.from_files(paths, codec.encode, codec.eos_id, cfg.seq_len)
    chats = iter_chats(paths, codec.render, codec.encode)
    return ChatRows.build(chats, cfg.seq_len, codec.pad_id, cfg.pack)


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> MuonAdamW:
    """MuonAdamW over `param_groups(model)` with the configured hyperparameters."""
    hyper = GroupHyper(
        lr=cfg.lr,
        adamw_lr=cfg.adamw_lr,
        weight_decay=cfg.weight_decay,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        ns_steps=cfg.ns_steps,
        betas=cfg.betas,
        eps=cfg.eps,
        use_muon=cfg.name == "muonclip",
    )
    return MuonAdamW(param_groups(model, hyper))


def check_vocab(model: nn.Module, codec: TextCodec) -> None:
    """The tokenizer must not emit ids the embedding table lacks."""
    from openk2.tokenizer.resolve import check_vocab_fits

    vocab = model.config.vocab_size  # type: ignore[union-attr]
    fix = f"set model.overrides.vocab_size >= {codec.vocab_size}"
    check_vocab_fits(codec.vocab_size, vocab, fix=fix)


@dataclass(kw_only=True, slots=True)
class RunParts:
    """The seeded model and the data pipeline of a run, before any optimizer exists."""

    model: nn.Module
    loader: BatchLoader
    tokenizer: TokenizerSource | None


def build_parts(cfg: TrainConfig, codec: TextCodec | None = None) -> RunParts:
    """Seeds, tokenizer, model (LoRA attached, recording on, AC if asked) and the loader."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    expand_files(cfg.data.train_files)  # fail on missing data before building anything
    seed_everything(cfg.seed)
    tokenizer = None if codec else tokenizer_source(cfg)
    codec = codec or load_codec(cfg, tokenizer)
    model = build_model_from_spec(cfg.model, cfg.seed)
    check_vocab(model, codec)
    attach_lora(model, cfg)
    hooks.enable_recording(model, logits=True, load=not cfg.lora.enabled)
    if cfg.parallel.activation_checkpointing:
        apply_activation_checkpointing(model)
    rows = build_rows(cfg.data, codec)
    loader = BatchLoader(rows, cfg.batch_size, seed=cfg.seed, shuffle=cfg.data.shuffle)
    return RunParts(model=model, loader=loader, tokenizer=tokenizer)


def attach_lora(model: nn.Module, cfg: TrainConfig) -> None:
    """LoRA adapters per `cfg.lora` (nothing when it is off)."""
    if cfg.lora.enabled:
        apply_lora(
            model,
            targets=cfg.lora.targets,
            rank=cfg.lora.rank,
            alpha=cfg.lora.alpha,
            routed_experts=cfg.lora.routed_experts,
        )


def new_run(cfg: TrainConfig, parts: RunParts) -> Run:
    """A run at step 0 over `parts`, with its optimizer built on the model as it now is."""
    return Run(
        cfg=cfg,
        model=parts.model,
        optimizer=build_optimizer(parts.model, cfg.optim),
        loader=parts.loader,
        out_dir=Path(cfg.out_dir),
        qk_clip_tau=None if cfg.lora.enabled else cfg.optim.qk_clip_tau,
        router_bias_rate=0.0 if cfg.lora.enabled else cfg.optim.router_bias_rate,
        tokenizer=parts.tokenizer,
    )


def build_run(cfg: TrainConfig, *, codec: TextCodec | None = None) -> Run:
    """Everything `loop.train` needs, resumed from the newest checkpoint when cfg.resume."""
    run = new_run(cfg, build_parts(cfg, codec))
    latest = latest_checkpoint(run.out_dir) if cfg.resume else None
    if latest is not None:
        state = load_checkpoint(latest, model=run.model, optimizer=run.optimizer, loader=run.loader)
        run.step = int(state["step"])
    return run
