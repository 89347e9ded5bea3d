"""Page bookkeeping for the paged latent cache, with prefix reuse by block hashing.

The cache is cut into `num_blocks` pages of `block_size` tokens. A sequence's `block_table`
lists its pages in order. A page that is full and whose latents are computed gets a hash chained
over every token before it; another sequence whose prompt starts with the same tokens reuses the
page instead of recomputing it (shared system prompts, `n > 1`, multi-turn chats, recompute after
preemption). The hash also covers the content keys of the media whose pads lie in the page, so
the same text with another image is another prefix. Shared pages are never written: the only
page a sequence writes is its last, partial, private one.

The chain starts from the sequence's LoRA adapter name (None on the base model), so pages are
never shared across adapters: the same tokens have other latents under another adapter.
Freed pages keep their hash and content until they are handed out again (least recently freed
first), so a prefix stays reusable while memory allows.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from openk2.engine.media import span_keys
from openk2.engine.sequence import Sequence


@dataclass(slots=True)
class Block:
    """One page: who uses it and, once full and computed, the prefix hash it stands for."""

    block_id: int
    ref_count: int = 0
    hash: int | None = None
    token_ids: tuple[int, ...] = ()
    media_keys: tuple[bytes, ...] = ()
    """Content keys of the media items whose pads lie in this page."""


class BlockManager:
    """Allocates, shares and frees pages; never fails mid-step (callers check capacity first)."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be >= 1")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self._by_hash: dict[int, int] = {}
        self.prefix_hit_tokens = 0
        self.prefix_query_tokens = 0

    @property
    def num_free_blocks(self) -> int:
        """Pages no sequence holds (including cached ones that may still be reused)."""
        return len(self._free)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def match_prefix(self, seq: Sequence) -> list[int]:
        """Cached pages covering a prefix of `seq`; at least one token is always left to compute.

        Pure lookup: nothing changes until `allocate` takes the pages.
        """
        if not self.enable_prefix_caching:
            return []
        hits: list[int] = []
        parent: int | str | None = seq.params.adapter
        for index in range((len(seq) - 1) // self.block_size):
            tokens, media = self._page_content(seq, index)
            parent = hash((parent, tokens, media))
            block_id = self._by_hash.get(parent)
            if block_id is None or not self._holds(block_id, tokens, media):
                break
            hits.append(block_id)
        return hits

    def _holds(self, block_id: int, tokens: tuple[int, ...], media: tuple[bytes, ...]) -> bool:
        """Whether a hash hit really holds this content (guards against hash collisions)."""
        block = self.blocks[block_id]
        return block.token_ids == tokens and block.media_keys == media

    def _page_content(self, seq: Sequence, index: int) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
        """(token ids, overlapping media keys) of page `index` of `seq`: what its hash covers."""
        start, end = index * self.block_size, (index + 1) * self.block_size
        return tuple(seq.token_ids[start:end]), span_keys(seq.media, start, end)

    def allocate(self, seq: Sequence, cached: list[int], num_tokens: int) -> bool:
        """Give a new sequence the `cached` prefix pages plus fresh pages up to `num_tokens`.

        Returns False, changing nothing, when the free pages do not suffice.
        """
        reclaimed = sum(1 for b in cached if self.blocks[b].ref_count == 0)
        fresh = self.blocks_needed(num_tokens) - len(cached)
        if fresh + reclaimed > self.num_free_blocks:
            return False
        for block_id in cached:
            self._ref(block_id)
        seq.block_table = list(cached)
        seq.block_hashes = [h for b in cached if (h := self.blocks[b].hash) is not None]
        seq.num_cached_tokens = len(cached) * self.block_size
        seq.num_computed_tokens = seq.num_cached_tokens
        self.prefix_hit_tokens += seq.num_cached_tokens
        self.prefix_query_tokens += len(seq)
        self._append_fresh(seq, fresh)
        return True

    def grow(self, seq: Sequence, num_tokens: int) -> bool:
        """Extend `seq`'s pages to hold `num_tokens` tokens; False (no change) if out of pages."""
        fresh = self.blocks_needed(num_tokens) - len(seq.block_table)
        if fresh > self.num_free_blocks:
            return False
        self._append_fresh(seq, fresh)
        return True

    def free(self, seq: Sequence) -> None:
        """Release every page of `seq` (pages shared with others stay until their last user)."""
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self._free[block_id] = None
        seq.block_table = []
        seq.block_hashes = []

    def commit(self, seq: Sequence) -> None:
        """Hash the pages that became full and computed, so later sequences can reuse them."""
        if not self.enable_prefix_caching:
            return
        num_full = seq.num_computed_tokens // self.block_size
        for i in range(len(seq.block_hashes), num_full):
            parent = seq.block_hashes[-1] if seq.block_hashes else seq.params.adapter
            tokens, media = self._page_content(seq, i)
            block_hash = hash((parent, tokens, media))
            seq.block_hashes.append(block_hash)
            self._register(self.blocks[seq.block_table[i]], block_hash, tokens, media)

    def _register(
        self, block: Block, block_hash: int, tokens: tuple[int, ...], media: tuple[bytes, ...]
    ) -> None:
        if block.hash is not None or block_hash in self._by_hash:
            return  # already registered, or the same content lives in another page
        block.hash = block_hash
        block.token_ids = tokens
        block.media_keys = media
        self._by_hash[block_hash] = block.block_id

    def _append_fresh(self, seq: Sequence, count: int) -> None:
        for _ in range(count):
            block_id, _ = self._free.popitem(last=False)
            self._forget(self.blocks[block_id])
            self.blocks[block_id].ref_count = 1
            seq.block_table.append(block_id)

    def _ref(self, block_id: int) -> None:
        block = self.blocks[block_id]
        if block.ref_count == 0:
            del self._free[block_id]
        block.ref_count += 1

    def _forget(self, block: Block) -> None:
        if block.hash is not None and self._by_hash.get(block.hash) == block.block_id:
            del self._by_hash[block.hash]
        block.hash = None
        block.token_ids = ()
        block.media_keys = ()
