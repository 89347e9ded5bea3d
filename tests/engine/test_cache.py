"""The paged latent cache hands attention its context without a fresh full-length copy per
layer: a view of the pool for one row in consecutive slots, else one reused workspace."""

from __future__ import annotations

import torch

from openk2.engine.cache import PagedLatentCache


def pool() -> PagedLatentCache:
    cache = PagedLatentCache(
        num_layers=2, num_blocks=8, block_size=4, latent_dim=3, dtype=torch.float32
    )
    cache.kv_LNC.copy_(torch.randn_like(cache.kv_LNC))
    return cache


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_one_row_in_consecutive_slots_reads_a_view_of_the_pool() -> None:
    cache = pool()
    step = cache.step(torch.tensor([[10, 11]]), torch.arange(4, 12)[None], None)
    new = torch.randn(1, 2, 3)
    latent, mask = step.update(1, new)
    assert mask is None
    assert shares_storage(latent, cache.kv_LNC)
    torch.testing.assert_close(latent[0], cache.kv_LNC[1, 4:12])
    torch.testing.assert_close(latent[0, -2:], new[0])


def test_scattered_slots_are_gathered_into_one_reused_workspace() -> None:
    cache = pool()
    context = torch.tensor([[8, 9, 10, 11, 0, 1, 2], [20, 21, 22, 23, 24, 25, 26]])
    step = cache.step(torch.tensor([[2], [26]]), context, None)
    first, _ = step.update(0, torch.randn(2, 1, 3))
    expected = cache.kv_LNC[0][context.flatten()].view(2, 7, 3)
    torch.testing.assert_close(first, expected)
    assert not shares_storage(first, cache.kv_LNC)
    second, _ = step.update(1, torch.randn(2, 1, 3))
    torch.testing.assert_close(second, cache.kv_LNC[1][context.flatten()].view(2, 7, 3))
    assert shares_storage(first, second)  # the same workspace, not a new tensor per layer
