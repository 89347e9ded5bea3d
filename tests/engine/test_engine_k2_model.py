"""The engine driving the real K2 architecture (debug preset) through the paged latent cache."""

import pytest
import torch

from engine.fakes import ByteTokenizer
from openk2.engine.cache import PagedLatentCache
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.sampling_params import SamplingParams
from openk2.model import KimiK2ForCausalLM, build_model, enable_packed_gemms, get_preset


@pytest.fixture(scope="module")
def model() -> KimiK2ForCausalLM:
    torch.manual_seed(0)
    return build_model(get_preset("debug"), dtype=torch.float64, seed=1).eval()


def reference(model: KimiK2ForCausalLM, prompt: list[int], steps: int) -> list[int]:
    """Greedy by full recompute, no cache at all."""
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt) :]


def test_batched_paged_greedy_matches_full_recompute(model: KimiK2ForCausalLM) -> None:
    prompts = [list(range(10, 10 + n)) for n in (5, 23, 1, 40)]
    engine = LLMEngine(
        model,
        ByteTokenizer(vocab_size=512),
        EngineConfig(block_size=8, num_blocks=24, max_num_seqs=4, max_num_batched_tokens=16),
    )
    params = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
    results = engine.generate(prompts, params)
    for prompt, (out,) in zip(prompts, results, strict=True):
        assert out.token_ids == reference(model, prompt, 8)
    assert engine.block_manager.num_free_blocks == engine.block_manager.num_blocks


def test_k2_cache_costs_70272_bytes_per_token_in_bf16() -> None:
    cfg = get_preset("kimi-k2.6")
    latent = cfg.kv_lora_rank + cfg.qk_rope_head_dim
    assert latent == 576
    assert PagedLatentCache.bytes_per_token(cfg.num_hidden_layers, latent, torch.bfloat16) == 70_272


def test_packed_gemms_give_the_same_batched_greedy_output() -> None:
    model = build_model(get_preset("debug").replace(initializer_range=0.1), seed=2).eval()
    prompts = [list(range(30, 30 + n)) for n in (3, 17, 9, 26)]
    params = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
    outputs = []
    for packed in (False, True):
        config = EngineConfig(block_size=8, num_blocks=24, max_num_seqs=4, packed_gemms=packed)
        engine = LLMEngine(model, ByteTokenizer(vocab_size=512), config)
        assert model.model.layers[0].mlp.packed_gemms is packed
        outputs.append([out.token_ids for (out,) in engine.generate(prompts, params)])
        enable_packed_gemms(model, False)
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_quantized_model_serves_batches_like_one_request_at_a_time(fmt: str) -> None:
    """int8/int4 QuantLinears in the batched engine path (the kernels take any number of rows,
    strided ones too): four prompts batched start as each does alone. Later tokens may part:
    bf16 sums round differently with the batch's shape (the bf16 model's do too)."""
    from openk2.model.quant.packed import packed_kernels_available
    from openk2.model.quantize import quantize_model

    if not packed_kernels_available():
        pytest.skip("torch build lacks the packed CPU kernels")
    model = build_model(get_preset("debug").replace(initializer_range=0.1), seed=2)
    model = model.to(torch.bfloat16).eval()
    quantize_model(model, fmt)  # type: ignore[arg-type]
    prompts = [list(range(30, 30 + n)) for n in (3, 17, 9, 26)]
    params = SamplingParams(temperature=0.0, max_tokens=6, ignore_eos=True)
    config = EngineConfig(block_size=8, num_blocks=24, max_num_seqs=4)
    engine = LLMEngine(model, ByteTokenizer(vocab_size=512), config)
    batched = [out.token_ids for (out,) in engine.generate(prompts, params)]
    alone = [engine.generate([p], params)[0][0].token_ids for p in prompts]
    assert [t[0] for t in batched] == [t[0] for t in alone]
    assert all(len(t) == 6 for t in batched)
    assert engine.block_manager.num_free_blocks == engine.block_manager.num_blocks
