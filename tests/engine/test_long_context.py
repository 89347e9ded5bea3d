"""Long prompts through the engine: chunked prefill over the paged latent cache computes the same
logits as a one-shot prefill, and a >64K-token request runs on the debug preset."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from engine.fakes import ByteTokenizer
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import ContextLengthError, LLMEngine
from openk2.engine.sampling_params import SamplingParams
from openk2.model import KimiK2ForCausalLM, build_model, get_preset
from openk2.model.layers import blocked_attention
from openk2.model.layers.mla import MLA

PROMPT = [(7 * i + 3) % 500 + 1 for i in range(150)]


class RecordingLM(nn.Module):
    """Wraps the model; keeps every position's logits of every forward the engine makes."""

    def __init__(self, inner: KimiK2ForCausalLM) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.logits: dict[int, torch.Tensor] = {}

    def forward(self, input_ids, positions=None, cache=None, *, logits_to_keep=0):  # noqa: ANN001
        out = self.inner(input_ids, positions, cache)
        for row in range(input_ids.shape[0]):
            for t, pos in enumerate(positions[row].tolist()):
                self.logits[pos] = out[row, t].clone()
        return out[:, -max(logits_to_keep, 1) :]


@pytest.fixture(scope="module", params=["dense", "moe"])
def model(request: pytest.FixtureRequest) -> KimiK2ForCausalLM:
    """fp64 debug model, all-dense MLPs or MoE in layers 1-2 (8 experts, top-2). The MoE routes
    in fp64 for fp64 inputs, so its top-k and weights match to ~1e-15 whatever the chunking
    (an fp32 router rounds differently for different row counts: ~1e-7 apart)."""
    dense_layers = 3 if request.param == "dense" else 1
    cfg = get_preset("debug").replace(initializer_range=0.1, first_k_dense_replace=dense_layers)
    model = build_model(cfg, dtype=torch.float64, seed=3).eval()
    for module in model.modules():
        if isinstance(module, MLA):
            module.workspace = 256  # tiles of a few keys: many blocks even on short prompts
    return model


def one_shot(model: KimiK2ForCausalLM, prompt: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([prompt]))[0]


def engine_for(recorder: RecordingLM, chunk: int) -> LLMEngine:
    config = EngineConfig(
        block_size=16, num_blocks=40, max_num_seqs=1, max_num_batched_tokens=chunk,
        packed_gemms=False, max_model_len=1024,
    )  # fmt: skip
    return LLMEngine(recorder, ByteTokenizer(vocab_size=512), config)


@pytest.mark.parametrize("chunk", [1, 7, 64, len(PROMPT)])
def test_chunked_prefill_logits_equal_one_shot(model: KimiK2ForCausalLM, chunk: int) -> None:
    recorder = RecordingLM(model)
    params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
    engine_for(recorder, chunk).generate([PROMPT], params)
    chunked = torch.stack([recorder.logits[p] for p in range(len(PROMPT))])
    torch.testing.assert_close(chunked, one_shot(model, PROMPT), rtol=0, atol=1e-10)


def test_prefix_cache_hit_mid_prompt_gives_one_shot_logits(model: KimiK2ForCausalLM) -> None:
    recorder = RecordingLM(model)
    engine = engine_for(recorder, 7)
    params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
    engine.generate([PROMPT[:70]], params)
    other = PROMPT[:70] + [(11 * i) % 400 + 2 for i in range(60)]
    recorder.logits.clear()
    engine.generate([other], params)
    assert engine.block_manager.prefix_hit_tokens == 64  # 4 full pages of the first prompt
    assert min(recorder.logits) == 64
    computed = torch.stack([recorder.logits[p] for p in range(64, len(other))])
    torch.testing.assert_close(computed, one_shot(model, other)[64:], rtol=0, atol=1e-10)


def test_a_long_prefill_stays_inside_the_attention_workspace(monkeypatch) -> None:  # noqa: ANN001
    """The fast twin of the 65K test: same path (chunks over a long prefix, blocked attention),
    every block of queries x keys within the workspace."""
    tiles: list[int] = []
    real_sdpa = blocked_attention.F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):  # noqa: ANN001, ANN003, ANN202
        tiles.append(q.shape[2] * k.shape[2])  # query rows x keys of one fused call
        return real_sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(blocked_attention, "F", SimpleNamespace(scaled_dot_product_attention=spy))
    model = build_model(get_preset("debug").replace(max_position_embeddings=8192), seed=4).eval()
    for module in model.modules():
        if isinstance(module, MLA):
            module.workspace = 1 << 16
    config = EngineConfig(max_num_batched_tokens=1024, packed_gemms=False)
    engine = LLMEngine(model, ByteTokenizer(vocab_size=512), config)
    prompt = [(5 * i) % 500 + 1 for i in range(6000)]
    (out,) = engine.generate([prompt], SamplingParams(temperature=0.0, max_tokens=2))[0]
    assert len(out.token_ids) == 2
    assert tiles and max(tiles) <= 1 << 16


@pytest.mark.slow
def test_a_65k_token_request_runs_on_the_debug_preset() -> None:
    length = 65_600
    cfg = get_preset("debug").replace(max_position_embeddings=length + 16)
    model = build_model(cfg, seed=4).eval()
    config = EngineConfig(max_model_len=length + 16, max_num_batched_tokens=4096)
    engine = LLMEngine(model, ByteTokenizer(vocab_size=512), config)
    prompt = [(5 * i) % 500 + 1 for i in range(length)]
    params = SamplingParams(temperature=0.0, max_tokens=2, ignore_eos=True)
    (out,) = engine.generate([prompt], params)[0]
    assert out.num_prompt_tokens == length
    assert len(out.token_ids) == 2


def test_cache_memory_bounds_the_context_with_a_clear_error() -> None:
    cfg = get_preset("debug").replace(max_position_embeddings=1 << 20)
    model = build_model(cfg, seed=5).eval()
    per_token = 3 * 40 * 4  # layers x (kv_lora_rank + rope dims) x fp32
    config = EngineConfig(cache_memory_bytes=per_token * 16 * 100, packed_gemms=False)
    engine = LLMEngine(model, ByteTokenizer(vocab_size=512), config)
    assert engine.cache.kv_LNC.nbytes == per_token * 1600  # exact accounting, no slack
    assert engine.max_model_len == 1600
    with pytest.raises(ContextLengthError, match=r"1600 tokens \(set by the memory of the latent"):
        engine.add_request([1] * 1600, SamplingParams(max_tokens=1))


def test_default_max_model_len_is_the_models_position_limit() -> None:
    model = build_model(get_preset("debug"), seed=5).eval()
    engine = LLMEngine(model, ByteTokenizer(vocab_size=512), EngineConfig(packed_gemms=False))
    assert engine.max_model_len == 1024
    assert "max_position_embeddings" in engine.limited_by
