"""Single-token decode tables: same numbers as the module path, rebuilt whenever weights change.

The reference for every check is the same forward with autograd enabled, which never uses the
tables (`no_grad_single_token` is False), so both paths run on identical weights.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from openk2.model import KimiK2ForCausalLM, build_model, get_preset
from openk2.model.config import ModelConfig
from openk2.model.layers.decode_tables import (
    DerivedTable,
    block_matvec,
    is_plain_linear,
    linear_table,
    matvec,
)

TOLERANCE = 1e-5


def _model(config: ModelConfig | None = None, seed: int = 0) -> KimiK2ForCausalLM:
    config = (config or get_preset("debug")).replace(initializer_range=0.1)
    return build_model(config, seed=seed).eval()


def _step_logits(model: KimiK2ForCausalLM, ids: torch.Tensor, *, grad: bool) -> torch.Tensor:
    """Logits of the last of `ids` decoded as one token after a cached prefill of the rest."""
    with torch.no_grad():
        cache = model.new_cache(ids.shape[0], ids.shape[1])
        model(ids[:, :-1], cache=cache)
    with torch.set_grad_enabled(grad):
        return model(ids[:, -1:], cache=cache).detach()


def _gap(model: KimiK2ForCausalLM, ids: torch.Tensor) -> float:
    """max |fast - reference| of one decode step's logits."""
    fast = _step_logits(model, ids, grad=False)
    return (fast - _step_logits(model, ids, grad=True)).abs().max().item()


def _ids(config: ModelConfig, length: int = 6, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, config.vocab_size, (1, length), generator=generator)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"q_lora_rank": None}, {"n_shared_experts": 2}, {"n_shared_experts": 0}],
    ids=["plain", "no_q_lora", "two_shared", "no_shared"],
)
def test_single_token_step_equals_the_module_path(overrides: dict[str, int | None]) -> None:
    model = _model(get_preset("debug").replace(**overrides))
    for seed in range(3):
        assert _gap(model, _ids(model.config, seed=seed)) <= TOLERANCE


def test_tables_follow_an_optimizer_step_and_a_load() -> None:
    model, donor = _model(seed=0), _model(seed=5)
    ids = _ids(model.config)
    before = _step_logits(model, ids, grad=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(ids).logsumexp(-1).sum().backward()
    optimizer.step()
    stepped = _step_logits(model, ids, grad=False)
    assert (stepped - before).abs().max().item() > 1e-3
    assert _gap(model, ids) <= TOLERANCE
    model.load_state_dict(donor.state_dict())
    loaded = _step_logits(model, ids, grad=False)
    assert torch.equal(loaded, _step_logits(donor, ids, grad=False))
    assert _gap(model, ids) <= TOLERANCE


def test_tables_follow_a_dtype_cast() -> None:
    # bf16 paths round differently: judge both against the fp32 model they were cast from.
    model = _model()
    ids = _ids(model.config)
    truth = _step_logits(model, ids, grad=False)
    model.to(torch.bfloat16)
    fast = _step_logits(model, ids, grad=False)
    assert fast.dtype == torch.bfloat16
    reference_error = (_step_logits(model, ids, grad=True).float() - truth).abs().max().item()
    assert (fast.float() - truth).abs().max().item() <= 2 * reference_error


def test_hooked_modules_take_the_module_path() -> None:
    # A LoRA adapter is a forward hook: the tables must not bypass it.
    model = _model()
    ids = _ids(model.config)
    plain = _step_logits(model, ids, grad=False)
    layer = model.model.layers[1]
    hooked = [layer.self_attn.q_a_proj, layer.self_attn.o_proj, model.lm_head]
    hooked += [expert.down_proj for expert in layer.mlp.experts] + [layer.mlp.shared_experts]
    hooked.append(model.model.layers[0].mlp.up_proj)
    for module in hooked:
        module.register_forward_hook(lambda mod, args, out: out + 0.01)
    fast = _step_logits(model, ids, grad=False)
    assert (fast - plain).abs().max().item() > 1e-3
    assert (fast - _step_logits(model, ids, grad=True)).abs().max().item() <= TOLERANCE


def test_derived_table_rebuilds_only_when_a_source_changes() -> None:
    weight = torch.randn(3, 4)
    builds: list[int] = []

    def build() -> torch.Tensor:
        builds.append(1)
        return linear_table([weight])

    table = DerivedTable()
    first = table.get([weight], build)
    assert table.get([weight], build) is first and len(builds) == 1
    with torch.no_grad():
        weight.mul_(2)
    assert torch.equal(table.get([weight], build), weight.t()) and len(builds) == 2
    table.clear()
    table.get([weight], build)
    assert len(builds) == 3


def test_plain_linear_excludes_bias_hooks_and_subclasses() -> None:
    assert is_plain_linear(nn.Linear(4, 3, bias=False))
    assert not is_plain_linear(nn.Linear(4, 3))
    hooked = nn.Linear(4, 3, bias=False)
    hooked.register_forward_pre_hook(lambda mod, args: None)
    assert not is_plain_linear(hooked)

    class Wrapped(nn.Linear):
        pass

    assert not is_plain_linear(Wrapped(4, 3, bias=False))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matvec_kernels_equal_linear(dtype: torch.dtype) -> None:
    weights = [torch.randn(5, 7, dtype=dtype), torch.randn(3, 7, dtype=dtype)]
    x = torch.randn(1, 7, dtype=dtype)
    atol = 0.05 if dtype == torch.bfloat16 else 1e-5
    expected = F.linear(x.float(), torch.cat(weights).float())
    got = matvec(x, linear_table(weights))
    assert got.dtype == dtype and got.shape == (1, 8)
    assert torch.allclose(got.float(), expected, atol=atol)
    blocks = torch.randn(4, 7, 6, dtype=dtype)
    xs = torch.randn(4, 7, dtype=dtype)
    per_head = block_matvec(xs, blocks.view(-1, 6))
    reference = torch.bmm(xs.float().unsqueeze(1), blocks.float()).squeeze(1)
    assert torch.allclose(per_head.float(), reference, atol=atol)


def _relative_gap(model: KimiK2ForCausalLM, ids: torch.Tensor) -> float:
    fast = _step_logits(model, ids, grad=False).float()
    reference = _step_logits(model, ids, grad=True).float()
    return ((fast - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_format_stays_within_quantization_error(dtype: torch.dtype) -> None:
    model = _model(get_preset("debug").replace(n_shared_experts=2)).to(dtype)
    ids = _ids(model.config)
    model.set_decode_format("int8")
    gaps = [_relative_gap(model, _ids(model.config, seed=seed)) for seed in range(3)]
    assert all(1e-4 < gap < 0.05 for gap in gaps), gaps  # int8 in use, and close
    model.set_decode_format("native")
    assert _relative_gap(model, ids) < (1e-6 if dtype == torch.float32 else 0.02)


def test_int8_tables_follow_weight_changes() -> None:
    model, donor = _model(seed=0), _model(seed=5)
    ids = _ids(model.config)
    model.set_decode_format("int8")
    _step_logits(model, ids, grad=False)
    model.load_state_dict(donor.state_dict())
    assert _relative_gap(model, ids) < 0.05


def test_unknown_or_misplaced_decode_format_is_rejected() -> None:
    model = _model()
    with pytest.raises(ValueError, match="decode format"):
        model.set_decode_format("int4")  # type: ignore[arg-type]
    with torch.device("meta"):
        meta = KimiK2ForCausalLM(model.config)
    with pytest.raises(ValueError, match="CPU only"):
        meta.set_decode_format("int8")


def test_two_threads_split_bags_without_changing_results() -> None:
    model = _model()
    ids = _ids(model.config)
    truth = _step_logits(model, ids, grad=False)
    model.to(torch.bfloat16)
    reference_error = (_step_logits(model, ids, grad=True).float() - truth).abs().max().item()
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            fast = _step_logits(model, ids, grad=False).float()
            assert (fast - truth).abs().max().item() <= 2 * reference_error
    finally:
        torch.set_num_threads(threads)
