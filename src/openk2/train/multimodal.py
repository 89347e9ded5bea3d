"""Supervised training of the K2.5 / K2.6 multimodal model on chats with images and video.

A `MediaChat` is a tokenised chat (`data.EncodedChat`: ids + trainable flags) whose
`<|media_pad|>` runs are already expanded, plus its media items in prompt order. `collate`
right-pads a batch (causal attention: padding after a row never reaches it) and concatenates
the items of all rows in row order, which is the order `scatter_media` fills the pad slots.
`media_loss_sum` is `loop.target_loss_sum` for this model: the vocabulary head runs only on the
positions whose label counts. `freeze_language_model` gives the LLaVA-style stage that trains
the vision tower and projector against a fixed text model, so text-only prompts keep exactly
the text model's behaviour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.vision import KimiK25ForConditionalGeneration
from openk2.model.vision.merge import scatter_media
from openk2.model.vision.processor import MediaItem, pack_items
from openk2.train.data import IGNORE, EncodedChat, chat_labels
from openk2.train.metrics import StepMetrics
from openk2.train.optim.schedule import ScheduleConfig, apply_lr, lr_factor


@dataclass(frozen=True, slots=True)
class MediaChat:
    """One training chat: expanded ids, trainable flags and its media items in order."""

    chat: EncodedChat
    items: tuple[MediaItem, ...]


@dataclass(frozen=True, slots=True)
class MediaBatch:
    """Model inputs of a batch: ids/labels [B, T], packed pixels and one grid per item."""

    inputs_BT: torch.Tensor
    labels_BT: torch.Tensor
    pixels: torch.Tensor | None
    grid_thw: list[tuple[int, int, int]] | None


def collate(chats: Sequence[MediaChat], pad_id: int) -> MediaBatch:
    """Right-padded [B, T] rows (T = the longest chat minus one) and their packed media."""
    pairs = [chat_labels(c.chat) for c in chats]
    width = max(len(inputs) for inputs, _ in pairs)
    x = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    y = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    for row, (inputs, labels) in enumerate(pairs):
        x[row, : len(inputs)] = torch.tensor(inputs)
        y[row, : len(labels)] = torch.tensor(labels)
    items = [item for c in chats for item in c.items]
    if not items:
        return MediaBatch(inputs_BT=x, labels_BT=y, pixels=None, grid_thw=None)
    pixels, grid = pack_items(items)
    return MediaBatch(inputs_BT=x, labels_BT=y, pixels=pixels, grid_thw=grid)


def media_loss_sum(model: KimiK25ForConditionalGeneration, batch: MediaBatch) -> torch.Tensor:
    """Summed next-token cross-entropy over the batch's target tokens."""
    return _loss_and_media(model, batch)[0]


def scale_penalty(media_ND: torch.Tensor, target_norm: float) -> torch.Tensor:
    """Keeps media tokens at the text embeddings' scale and centred: (|m|/t - 1)^2 per token
    plus (|mean m|/t)^2. Without it the tower learns one large shared vector (an attention
    sink the text model can ignore) and what differs between tokens drowns in it."""
    norms = media_ND.float().norm(dim=-1) / target_norm
    centre = media_ND.float().mean(dim=0).norm() / target_norm
    return ((norms - 1) ** 2).mean() + centre**2


def _loss_and_media(model: KimiK25ForConditionalGeneration,
                    batch: MediaBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
    embed = model.language_model.model.embed_tokens
    is_pad = batch.inputs_BT == model.media_pad_token_id
    embeds_BTD = embed(batch.inputs_BT.masked_fill(is_pad, 0))
    media_ND = None
    if batch.pixels is not None and batch.grid_thw is not None:
        media_ND = model.media_embeddings(batch.pixels, batch.grid_thw)
        embeds_BTD = scatter_media(embeds_BTD, batch.inputs_BT, media_ND,
                                   model.media_pad_token_id)
    keep_N = (batch.labels_BT != IGNORE).flatten()
    lm = model.language_model
    hidden_ND = lm.model(None, inputs_embeds=embeds_BTD).flatten(0, 1)[keep_N]
    logits_NV = lm.lm_head(hidden_ND)
    loss = F.cross_entropy(logits_NV.float(), batch.labels_BT.flatten()[keep_N], reduction="sum")
    return loss, media_ND


def freeze_language_model(model: KimiK25ForConditionalGeneration) -> None:
    """Only the vision tower and projector train; the text model stays in eval mode."""
    for p in model.language_model.parameters():
        p.requires_grad_(False)
    model.language_model.eval()


def media_train_step(
    model: KimiK25ForConditionalGeneration, optimizer: torch.optim.Optimizer, batch: MediaBatch,
    *, step: int, total_steps: int, schedule: ScheduleConfig, grad_clip: float | None,
    scale_weight: float = 0.0, target_norm: float = 1.0,
) -> StepMetrics:  # fmt: skip
    """One optimizer step on one batch (`step` = steps done before it); its metrics.
    `scale_weight` > 0 adds `scale_penalty` (not part of the reported loss)."""
    start = time.perf_counter()
    targets = int((batch.labels_BT != IGNORE).sum())
    loss_sum, media_ND = _loss_and_media(model, batch)
    loss = loss_sum / max(1, targets)
    total = loss
    if scale_weight > 0 and media_ND is not None:
        total = loss + scale_weight * scale_penalty(media_ND, target_norm)
    total.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, grad_clip if grad_clip is not None else math.inf)
    lr = apply_lr(optimizer, lr_factor(step, total_steps, schedule))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    tokens = batch.inputs_BT.numel()
    return StepMetrics(
        step=step + 1, loss=float(loss.detach()), lr=lr, grad_norm=float(norm), tokens=tokens,
        targets=targets, tokens_per_s=tokens / seconds if seconds > 0 else 0.0,
        max_logit=math.nan, clipped_heads=0, load_imbalance=math.nan, seconds=seconds,
    )  # fmt: skip
