"""Context overrides: a factor change rescales every layer's logits (and says so loudly);
raising max_position_embeddings alone changes nothing numerically."""

import torch

from openk2.model import build_model, get_preset
from openk2.model.context_overrides import override_context
from openk2.model.layers.mla import MLA


def test_max_position_override_keeps_logits() -> None:
    model = build_model(get_preset("debug"), seed=0).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.inference_mode():
        before = model(ids)
        assert override_context(model, max_position_embeddings=1 << 21) == []
        after = model(ids)
    assert model.config.max_position_embeddings == 1 << 21
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_factor_override_warns_and_changes_every_layers_scale(caplog) -> None:  # noqa: ANN001
    model = build_model(get_preset("debug"), seed=0).eval()
    scales = [m.scale for m in model.modules() if isinstance(m, MLA)]
    (note,) = override_context(model, rope_factor=32.0)
    assert "every attention layer" in note and "RESEARCH OVERRIDE" in caplog.text
    new_scales = [m.scale for m in model.modules() if isinstance(m, MLA)]
    assert all(n > s for n, s in zip(new_scales, scales, strict=True))
    assert model.config.rope_scaling["factor"] == 32.0
