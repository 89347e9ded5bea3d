"""Blocked latent attention equals dense softmax attention, with masks, causal offsets and
tiles far smaller than the problem."""

import pytest
import torch

from openk2.model.layers.blocked_attention import blocked_latent_attention, tile_sizes


def dense(q_BTHC, latent_BSC, allowed_BTS, scale, value_dim):  # noqa: ANN001, ANN201
    scores = torch.einsum("bthc,bsc->bths", q_BTHC, latent_BSC) * scale
    scores = scores.masked_fill(~allowed_BTS.unsqueeze(2), float("-inf"))
    return torch.einsum("bths,bsl->bthl", scores.softmax(-1), latent_BSC[..., :value_dim])


@pytest.mark.parametrize("with_max_logit", [False, True])
@pytest.mark.parametrize("workspace", [16, 300, 1 << 20])
def test_explicit_mask_with_sparse_rows(workspace: int, with_max_logit: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 9, 3, 12, generator=gen, dtype=torch.float64)
    latent = torch.randn(2, 50, 12, generator=gen, dtype=torch.float64)
    allowed = torch.rand(2, 9, 50, generator=gen) < 0.1
    allowed[:, :, 0] = True  # every row sees a slot; many tiles see none
    out, best = blocked_latent_attention(
        q, latent, allowed, scale=0.3, value_dim=8, workspace=workspace,
        with_max_logit=with_max_logit,
    )  # fmt: skip
    torch.testing.assert_close(out, dense(q, latent, allowed, 0.3, 8), rtol=0, atol=1e-12)
    assert (best is not None) == with_max_logit


@pytest.mark.parametrize("with_max_logit", [False, True])
def test_causal_with_prefix_matches_dense(with_max_logit: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(1, 20, 2, 6, generator=gen, dtype=torch.float64)
    latent = torch.randn(1, 70, 6, generator=gen, dtype=torch.float64)
    causal = torch.arange(70)[None, :] <= torch.arange(20)[:, None] + 50
    out, _ = blocked_latent_attention(
        q, latent, None, scale=0.5, value_dim=4, workspace=64, with_max_logit=with_max_logit
    )
    torch.testing.assert_close(out, dense(q, latent, causal[None], 0.5, 4), rtol=0, atol=1e-12)


def test_tiles_fit_the_workspace() -> None:
    for batch, heads, workspace in [(1, 4, 1 << 22), (8, 64, 1 << 22), (1, 128, 1000)]:
        queries, keys = tile_sizes(batch, heads, workspace)
        assert queries >= 1 and keys >= 16
        assert batch * heads * queries * keys <= max(workspace, batch * heads * 16)
