"""Context costs from the config: the K2.6 figures of spec/long-context-vision.md §2.2."""

import pytest

from openk2.model import get_preset
from openk2.model.context_costs import context_costs


def test_k26_at_256k_and_2m() -> None:
    cfg = get_preset("kimi-k2.6")
    at_256k = context_costs(cfg, 262_144)
    assert at_256k.cache_bytes_per_token == 70_272
    assert at_256k.cache_bytes == 70_272 * 262_144  # 17.2 GiB
    # 2.5 MFLOP per token pair (naive MLA, 64 heads, 61 layers): 8.6e16 at 256K, 5.5e18 at 2M
    assert at_256k.prefill_attention_flops_naive == pytest.approx(8.6e16, rel=0.01)
    at_2m = context_costs(cfg, 2 * 1024**2)
    assert at_2m.prefill_attention_flops_naive == pytest.approx(5.5e18, rel=0.01)
    assert at_2m.decode_cache_bytes == pytest.approx(147.4e9, rel=0.001)


def test_attention_grows_quadratically_and_cache_linearly() -> None:
    cfg = get_preset("debug")
    short, long = context_costs(cfg, 1000), context_costs(cfg, 2000)
    assert long.cache_bytes == 2 * short.cache_bytes
    assert long.prefill_attention_flops_absorbed / short.prefill_attention_flops_absorbed == (
        pytest.approx(4.0, rel=0.001)
    )
    with pytest.raises(ValueError):
        context_costs(cfg, 0)
