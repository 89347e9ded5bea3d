"""Page allocation, freeing and prefix reuse."""

from openk2.engine.block_manager import BlockManager
from openk2.engine.sampling_params import SamplingParams
from openk2.engine.sequence import Sequence


def make_seq(tokens: list[int]) -> Sequence:
    return Sequence("r", 0, tokens, SamplingParams(), max_tokens=8)


def computed(bm: BlockManager, seq: Sequence) -> None:
    """Pretend a forward pass computed every token of `seq`."""
    seq.num_computed_tokens = len(seq)
    bm.commit(seq)


def test_allocate_and_free_return_every_page() -> None:
    bm = BlockManager(num_blocks=4, block_size=4)
    seq = make_seq(list(range(10)))
    assert bm.allocate(seq, [], 10)
    assert len(seq.block_table) == 3 and bm.num_free_blocks == 1
    bm.free(seq)
    assert bm.num_free_blocks == 4 and seq.block_table == []


def test_out_of_pages_changes_nothing() -> None:
    bm = BlockManager(num_blocks=2, block_size=4)
    seq = make_seq(list(range(12)))
    assert not bm.allocate(seq, [], 12)
    assert bm.num_free_blocks == 2 and seq.block_table == []
    assert bm.allocate(seq, [], 8)
    assert not bm.grow(seq, 9)
    assert len(seq.block_table) == 2


def test_shared_prefix_is_reused_and_survives_its_first_owner() -> None:
    bm = BlockManager(num_blocks=8, block_size=4)
    system = list(range(100, 112))  # three full pages
    a = make_seq(system + [1, 2])
    assert bm.allocate(a, bm.match_prefix(a), len(a))
    computed(bm, a)
    b = make_seq(system + [7])
    hits = bm.match_prefix(b)
    assert hits == a.block_table[:3]
    assert bm.allocate(b, hits, len(b))
    assert b.num_computed_tokens == 12 and b.num_cached_tokens == 12
    assert bm.blocks[hits[0]].ref_count == 2
    bm.free(a)
    assert all(bm.blocks[h].ref_count == 1 for h in hits)
    bm.free(b)
    assert bm.num_free_blocks == 8
    c = make_seq(system + [9, 9])
    assert bm.match_prefix(c) == hits  # freed pages keep their content until reused


def test_match_leaves_one_token_to_compute() -> None:
    bm = BlockManager(num_blocks=4, block_size=4)
    a = make_seq(list(range(8)))
    bm.allocate(a, [], 8)
    computed(bm, a)
    same = make_seq(list(range(8)))
    assert len(bm.match_prefix(same)) == 1  # the last page is recomputed to get logits


def test_divergent_prefix_stops_matching_and_disabled_cache_never_matches() -> None:
    bm = BlockManager(num_blocks=6, block_size=2)
    a = make_seq([1, 2, 3, 4, 5, 6, 7])
    bm.allocate(a, [], 7)
    computed(bm, a)
    assert len(bm.match_prefix(make_seq([1, 2, 9, 4, 5, 6, 7]))) == 1
    off = BlockManager(num_blocks=6, block_size=2, enable_prefix_caching=False)
    b = make_seq([1, 2, 3, 4, 5])
    off.allocate(b, [], 5)
    computed(off, b)
    assert off.match_prefix(make_seq([1, 2, 3, 4, 5])) == []


def test_reusing_a_cached_page_for_new_data_forgets_its_hash() -> None:
    bm = BlockManager(num_blocks=2, block_size=2)
    a = make_seq([1, 2, 3])
    bm.allocate(a, [], 3)
    computed(bm, a)
    bm.free(a)
    other = make_seq([8, 8, 8, 8])
    assert bm.allocate(other, [], 4)  # takes both pages, evicting the cached prefix
    assert bm.match_prefix(make_seq([1, 2, 3])) == []


def test_taking_cached_free_pages_counts_against_capacity() -> None:
    bm = BlockManager(num_blocks=3, block_size=2)
    a = make_seq([1, 2, 3, 4, 5])
    bm.allocate(a, [], 5)
    computed(bm, a)
    bm.free(a)
    b = make_seq([1, 2, 3, 4, 5, 6, 7, 8])
    hits = bm.match_prefix(b)
    assert len(hits) == 2
    assert bm.allocate(b, hits, 8) is False  # needs 2 cached + 2 fresh > 3 pages
    assert bm.num_free_blocks == 3
    assert bm.allocate(b, hits, 6)
