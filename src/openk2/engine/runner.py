"""Turns a scheduled step into model calls over the paged cache and returns sampling logits.

Rows are left-padded so every row's last token sits in the last column and the model only has to
keep the last position's logits. A step that mixes decode rows (1 token) with prefill chunks
(many tokens) runs as two forward calls, one per group: padding 31 decode rows up to a 256-token
chunk would multiply the work, while a second call costs one more pass over the weights.

A multimodal model (`KimiK25ForConditionalGeneration`) runs through its text model: a chunk that
covers media pads gets input embeddings whose pad rows are the media embeddings for exactly
those positions (`engine/media.py`), so a chunk may start or end anywhere inside a span.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import Protocol

import torch

from openk2.engine.cache import PagedLatentCache
from openk2.engine.lora import AdapterSet
from openk2.engine.media import DEFAULT_ENCODER_CACHE_TOKENS, EncoderCache, MediaSpan
from openk2.engine.scheduler import ScheduledSeq
from openk2.model.cache import LatentCache
from openk2.model.vision.processor import MediaItem, pack_items


class CausalLM(Protocol):
    """The model contract the engine drives (`KimiK2ForCausalLM` satisfies it)."""

    def __call__(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        *,
        logits_to_keep: int = 0,
    ) -> torch.Tensor: ...


class ModelRunner:
    """Prepares padded inputs, slot mappings and masks; runs the model without autograd."""

    def __init__(
        self,
        model: CausalLM,
        cache: PagedLatentCache,
        adapters: AdapterSet | None = None,
        encoder_cache_tokens: int = DEFAULT_ENCODER_CACHE_TOKENS,
    ) -> None:
        self.model = model
        self.cache = cache
        self.device = cache.device
        self.adapters = adapters
        """LoRA adapters the rows of a call choose between (None: base model only)."""
        self.multimodal = is_multimodal(model)
        self.text_model: CausalLM = model.language_model if self.multimodal else model  # type: ignore[attr-defined]
        self.encoder = EncoderCache(self._encode, encoder_cache_tokens)

    @torch.inference_mode()
    def run(self, scheduled: Seq[ScheduledSeq]) -> tuple[list[ScheduledSeq], torch.Tensor]:
        """Compute the step; return the rows that sample and their logits [R, V] (float32)."""
        groups = [
            [s for s in scheduled if s.num_new_tokens == 1],
            [s for s in scheduled if s.num_new_tokens > 1],
        ]
        rows: list[ScheduledSeq] = []
        logits: list[torch.Tensor] = []
        for group in groups:
            if not group:
                continue
            group_logits = self._forward(group)
            keep = [i for i, s in enumerate(group) if s.samples]
            rows.extend(group[i] for i in keep)
            logits.append(group_logits[keep])
        if not logits:
            return [], torch.empty(0, 0)
        return rows, torch.cat(logits).float()

    def _forward(self, group: list[ScheduledSeq]) -> torch.Tensor:
        batch = build_batch(group, self.cache.block_size, self.device)
        if self.adapters is not None:
            self.adapters.select([s.seq.params.adapter for s in group])
        step_cache = self.cache.step(batch.slots_BT, batch.context_BS, batch.mask_BTS)
        embeds_BTD = self._media_inputs(group, batch.input_ids_BT) if self.multimodal else None
        if embeds_BTD is None:
            out = self.text_model(
                batch.input_ids_BT, batch.positions_BT, step_cache, logits_to_keep=1
            )
        else:
            out = self.text_model(  # type: ignore[call-arg]
                None, batch.positions_BT, step_cache, inputs_embeds=embeds_BTD, logits_to_keep=1
            )
        return out[:, -1, :]

    def _media_inputs(
        self, group: list[ScheduledSeq], input_ids_BT: torch.Tensor
    ) -> torch.Tensor | None:
        """Input embeddings with this step's media positions filled; None: no media in it."""
        touched = [(b, s) for b, s in enumerate(group) if _chunk_spans(s)]
        if not touched:
            return None
        self.encoder.prefetch([span for _, s in touched for span, _, _ in _chunk_spans(s)])
        embed = self.model.language_model.model.embed_tokens  # type: ignore[attr-defined]
        embeds_BTD = embed(input_ids_BT)
        T = input_ids_BT.shape[1]
        for b, s in touched:
            column0 = T - s.num_new_tokens - s.start  # column of sequence position 0
            for span, lo, hi in _chunk_spans(s):
                media_ND = self.encoder.get(span)
                embeds_BTD[b, column0 + lo : column0 + hi] = media_ND[
                    lo - span.offset : hi - span.offset
                ].to(embeds_BTD.dtype)
        return embeds_BTD

    def _encode(self, items: Seq[MediaItem]) -> list[torch.Tensor]:
        """[num_tokens, D] projected embeddings of each image or video chunk: one packed tower
        call (attention stays within each item)."""
        param = next(self.model.vision_tower.parameters())  # type: ignore[attr-defined]
        pixels, grids = pack_items(items)
        pixels = pixels.to(device=param.device, dtype=param.dtype)
        embeds_ND = self.model.media_embeddings(pixels, grids)  # type: ignore[attr-defined]
        return list(embeds_ND.split([item.num_tokens for item in items]))


def is_multimodal(model: object) -> bool:
    """Whether `model` has a vision tower in front of a text model (K2.5 / K2.6 layout)."""
    return all(hasattr(model, a) for a in ("language_model", "vision_tower", "media_embeddings"))


def _chunk_spans(s: ScheduledSeq) -> list[tuple[MediaSpan, int, int]]:
    """(span, first, end) sequence positions of each media span inside this row's chunk."""
    end = s.start + s.num_new_tokens
    return [
        (span, max(span.offset, s.start), min(span.end, end))
        for span in s.seq.media
        if span.offset < end and s.start < span.end
    ]


class Batch:
    """Left-padded tensors of one forward call (padding: id 0, position 0, slot -1)."""

    def __init__(
        self,
        input_ids_BT: torch.Tensor,
        positions_BT: torch.Tensor,
        slots_BT: torch.Tensor,
        context_BS: torch.Tensor,
        mask_BTS: torch.Tensor | None,
    ) -> None:
        self.input_ids_BT = input_ids_BT
        self.positions_BT = positions_BT
        self.slots_BT = slots_BT
        self.context_BS = context_BS
        self.mask_BTS = mask_BTS


def build_batch(group: Seq[ScheduledSeq], block_size: int, device: torch.device) -> Batch:
    """Inputs for rows that each compute tokens [start, start + n) of their sequence."""
    T = max(s.num_new_tokens for s in group)
    ids = [
        [0] * (T - s.num_new_tokens) + s.seq.token_ids[s.start : s.start + s.num_new_tokens]
        for s in group
    ]
    pos = [
        [0] * (T - s.num_new_tokens) + list(range(s.start, s.start + s.num_new_tokens))
        for s in group
    ]
    positions_BT = torch.tensor(pos, dtype=torch.long)
    pad_BT = torch.arange(T)[None, :] < torch.tensor([T - s.num_new_tokens for s in group])[:, None]
    tables_BM = _block_tables(group)
    slots_BT = _slots(tables_BM, positions_BT, block_size).masked_fill(pad_BT, -1)
    S = max(s.start + s.num_new_tokens for s in group)
    s_S = torch.arange(S)
    context_BS = _slots(tables_BM, s_S.expand(len(group), S), block_size, clamp=True)
    return Batch(
        torch.tensor(ids, dtype=torch.long, device=device),
        positions_BT.to(device),
        slots_BT.to(device),
        context_BS.to(device),
        _context_mask(group, positions_BT, S, device),
    )


def _context_mask(
    group: Seq[ScheduledSeq], positions_BT: torch.Tensor, S: int, device: torch.device
) -> torch.Tensor | None:
    """[B, T, S] attendable slots; None (plain causal, T new tokens last) when every row ends
    at S with no padding, so a long prefill chunk carries no [T, S] mask at all."""
    if all(s.start + s.num_new_tokens == S for s in group) and len(
        {s.num_new_tokens for s in group}
    ) == 1:
        return None
    # Padding rows sit at position 0, so `s <= pos` lets them see slot 0 only: never empty.
    return (torch.arange(S)[None, None, :] <= positions_BT[:, :, None]).to(device)


def _block_tables(group: Seq[ScheduledSeq]) -> torch.Tensor:
    """[B, M] page ids per row, padded with each row's first page (always valid)."""
    width = max(len(s.seq.block_table) for s in group)
    return torch.tensor(
        [
            s.seq.block_table + [s.seq.block_table[0]] * (width - len(s.seq.block_table))
            for s in group
        ],
        dtype=torch.long,
    )


def _slots(
    tables_BM: torch.Tensor, positions: torch.Tensor, block_size: int, clamp: bool = False
) -> torch.Tensor:
    """Flat slot index of each position through the block tables."""
    page_index = positions // block_size
    if clamp:
        page_index = page_index.clamp(max=tables_BM.shape[1] - 1)
    pages = torch.gather(tables_BM, 1, page_index)
    return pages * block_size + positions % block_size
