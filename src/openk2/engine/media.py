"""Media in the engine: where each image or video chunk sits in a prompt, and its embeddings.

A multimodal request carries its encoder inputs (`MediaItem`s, in prompt order) beside prompt
ids whose `<|media_pad|>` runs were already expanded. `locate_media` pins every item to the run
of pads it replaces (`MediaSpan`) and keys it by a hash of its pixels. The vision tower runs
once per item: its projected embeddings go to an `EncoderCache` (LRU by content key), so a
prefill chunk that ends inside a span, the next chunk, a preempted sequence's recompute and a
repeated image in a later request all reuse them. The prefix cache folds the keys of the spans a
page overlaps into that page's hash (`BlockManager`), so equal text with different images never
shares pages.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from openk2.model.vision.processor import MediaItem

DEFAULT_ENCODER_CACHE_TOKENS = 16_384
"""Media embeddings (LM tokens) the encoder cache keeps by default (`EngineConfig`)."""


@dataclass(frozen=True, slots=True)
class MediaSpan:
    """One media item and the prompt positions [offset, offset + item.num_tokens) it fills."""

    item: MediaItem
    offset: int
    key: bytes
    """Content hash of the pixels and grid: equal keys mean equal embeddings."""

    @property
    def end(self) -> int:
        return self.offset + self.item.num_tokens


def content_key(item: MediaItem) -> bytes:
    """A 16-byte BLAKE2b digest of the item's grid and float32 pixels."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(item.grid_thw).encode())
    digest.update(item.pixels.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.digest()


def locate_media(
    prompt_ids: Sequence[int],
    items: Sequence[MediaItem],
    pad_id: int,
    keys: Sequence[bytes] | None = None,
) -> tuple[MediaSpan, ...]:
    """The span of every item: the k-th item takes the next `num_tokens` pads, which must be
    consecutive; every pad of the prompt must belong to an item (ValueError otherwise).

    `keys`: the items' `content_key`s when the caller hashed them already (the server does,
    off the engine thread: hashing a full-size image takes tens of milliseconds)."""
    if keys is not None and len(keys) != len(items):
        raise ValueError(f"{len(keys)} media keys for {len(items)} media items")
    pads = [i for i, token in enumerate(prompt_ids) if token == pad_id]
    wanted = sum(item.num_tokens for item in items)
    if len(pads) != wanted:
        raise ValueError(
            f"the prompt has {len(pads)} media placeholder tokens but its {len(items)} media "
            f"items need {wanted}"
        )
    spans, taken = [], 0
    for item in items:
        offset = pads[taken]
        if pads[taken + item.num_tokens - 1] != offset + item.num_tokens - 1:
            raise ValueError(f"the placeholder run at position {offset} is not contiguous")
        key = content_key(item) if keys is None else keys[len(spans)]
        spans.append(MediaSpan(item=item, offset=offset, key=key))
        taken += item.num_tokens
    return tuple(spans)


def span_keys(spans: Sequence[MediaSpan], start: int, end: int) -> tuple[bytes, ...]:
    """Keys of the spans overlapping positions [start, end) (for a page's prefix hash)."""
    return tuple(s.key for s in spans if s.offset < end and start < s.end)


Encode = Callable[[Sequence[MediaItem]], list[torch.Tensor]]
"""Items -> their embeddings [num_tokens, D] each (one packed tower call for all of them)."""


class EncoderCache:
    """LRU of media embeddings [num_tokens, D] by content key, bounded in LM tokens.

    The entries of the latest encode are always kept, so an item larger than the budget is
    still encoded once for all of its prefill chunks.
    """

    def __init__(self, encode: Encode, max_tokens: int = DEFAULT_ENCODER_CACHE_TOKENS) -> None:
        self._encode = encode
        self.max_tokens = max_tokens
        self._entries: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._tokens = 0
        self.num_encoded = 0
        """Items the vision tower actually ran for (hits do not count)."""

    def prefetch(self, spans: Sequence[MediaSpan]) -> None:
        """Encode every missing item of `spans` in one tower call (a step's images and video
        chunks, packed), so `get` finds them; equal keys are encoded once."""
        missing = {s.key: s for s in spans if s.key not in self._entries}
        if missing:
            self._store(list(missing.values()))

    def get(self, span: MediaSpan) -> torch.Tensor:
        """The item's embeddings, encoding it on a miss."""
        cached = self._entries.get(span.key)
        if cached is None:
            return self._store([span])[0]
        self._entries.move_to_end(span.key)
        return cached

    def _store(self, spans: list[MediaSpan]) -> list[torch.Tensor]:
        embeds = self._encode([s.item for s in spans])
        for span, item_embeds in zip(spans, embeds, strict=True):
            if item_embeds.shape[0] != span.item.num_tokens:
                raise ValueError(
                    f"the vision tower gave {item_embeds.shape[0]} embeddings for an item of "
                    f"{span.item.num_tokens} tokens"
                )
        self.num_encoded += len(spans)
        for span, item_embeds in zip(spans, embeds, strict=True):
            self._entries[span.key] = item_embeds
            self._tokens += span.item.num_tokens
        while self._tokens > self.max_tokens and len(self._entries) > len(spans):
            _, old = self._entries.popitem(last=False)
            self._tokens -= old.shape[0]
        return embeds
