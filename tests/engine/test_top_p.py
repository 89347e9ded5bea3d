"""Top-p by rejection: draws follow the renormalised nucleus; membership matches the mask."""

import torch

from openk2.engine.top_p import MAX_REJECTIONS, apply_top_p, draw_in_nucleus, in_nucleus


def generators(n: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def test_draws_follow_the_renormalised_nucleus() -> None:
    probs = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.07, 0.03])  # p = 0.7 keeps the first three
    rows = 500
    scores = probs.log().expand(rows, -1)
    counts = torch.zeros(6)
    gens = generators(rows)
    for _ in range(8):
        drawn = draw_in_nucleus(scores, torch.full((rows,), 0.7), gens)
        counts += torch.bincount(torch.tensor(drawn), minlength=6)
    assert counts[3:].sum() == 0
    expected = torch.tensor([0.3, 0.25, 0.2]) / 0.75
    assert torch.allclose(counts[:3] / counts.sum(), expected, atol=0.02)


def test_membership_agrees_with_the_mask() -> None:
    gen = torch.Generator().manual_seed(1)
    scores = torch.cat([torch.randn(4, 500, generator=gen) * 4, torch.randn(4, 500, generator=gen)])
    p = torch.tensor([0.3, 0.6, 0.9, 0.99] * 2)
    mask = ~torch.isinf(apply_top_p(scores, p))
    probs = scores.softmax(dim=1)
    for token in range(0, 500, 7):
        inside = in_nucleus(probs, torch.full((8,), token), p)
        assert torch.equal(inside, mask[:, token])


def test_ties_rank_by_token_id_and_p_one_keeps_everything() -> None:
    uniform = torch.zeros(3, 10)  # every probability 0.1
    inside = [in_nucleus(uniform.softmax(1), torch.full((3,), t), torch.tensor([0.35, 0.05, 1.0]))
              for t in range(10)]  # fmt: skip
    assert [bool(x[0]) for x in inside] == [True] * 4 + [False] * 6
    assert [bool(x[1]) for x in inside] == [True] + [False] * 9
    assert all(bool(x[2]) for x in inside)
    drawn = draw_in_nucleus(torch.zeros(200, 10), torch.full((200,), 0.35), generators(200))
    assert set(drawn) == {0, 1, 2, 3}
    kept = ~torch.isinf(apply_top_p(torch.zeros(1, 10), torch.tensor([0.35])))
    assert kept[0].tolist() == [True] * 4 + [False] * 6


def test_small_p_falls_back_to_the_exact_mask_after_repeated_rejections() -> None:
    scores = torch.randn(16, 4000, generator=torch.Generator().manual_seed(2)) * 0.01
    p = torch.full((16,), 1e-4)  # nucleus: the best token, hit with probability ~1/4000 per try
    drawn = draw_in_nucleus(scores, p, generators(16))
    assert drawn == scores.argmax(dim=1).tolist()
    assert MAX_REJECTIONS < 50  # the fallback bounds the work per step


def test_seeded_rows_draw_the_same_tokens_alone_or_batched() -> None:
    scores = torch.randn(1, 300, generator=torch.Generator().manual_seed(3))
    alone = [draw_in_nucleus(scores, torch.tensor([0.5]), generators(1, 9))[0] for _ in range(3)]
    batch = torch.cat([scores, torch.zeros(1, 300)])
    mixed = draw_in_nucleus(batch, torch.tensor([0.5, 0.2]), generators(1, 9) + generators(1, 4))
    assert mixed[0] == alone[0]
