"""Several PEFT adapters over one base model, chosen per request and batched together."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.fakes import ByteTokenizer
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.lora import AdapterSet
from openk2.engine.sampling_params import SamplingParams
from openk2.model import KimiK2ForCausalLM, build_model, get_preset

TARGETS = ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
           "gate_proj", "up_proj", "down_proj")  # fmt: skip
RANK, ALPHA = 4, 8


def adapted_names(model: torch.nn.Module, routed: bool = False) -> list[str]:
    return [
        name for name, m in model.named_modules()
        if name.rsplit(".", 1)[-1] in TARGETS and (routed or ".mlp.experts." not in name)
    ]  # fmt: skip


def write_adapter(out: Path, model: torch.nn.Module, seed: int, routed: bool = False) -> Path:
    """A PEFT folder with random A and B large enough to change greedy outputs."""
    gen = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    tensors = {}
    for name in adapted_names(model, routed):
        out_f, in_f = modules[name].weight.shape
        tensors[f"base_model.model.{name}.lora_A.weight"] = torch.randn(RANK, in_f, generator=gen)
        tensors[f"base_model.model.{name}.lora_B.weight"] = 0.05 * torch.randn(
            out_f, RANK, generator=gen
        )
    out.mkdir(parents=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "target_modules": list(TARGETS)}
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def merged(model: KimiK2ForCausalLM, adapter: Path) -> KimiK2ForCausalLM:
    from safetensors.torch import load_file

    out = copy.deepcopy(model)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    modules = dict(out.named_modules())
    with torch.no_grad():
        for name in adapted_names(out):
            a = tensors[f"base_model.model.{name}.lora_A.weight"].double()
            b = tensors[f"base_model.model.{name}.lora_B.weight"].double()
            modules[name].weight += (ALPHA / RANK) * (b @ a).to(modules[name].weight.dtype)
    return out


def reference(model: KimiK2ForCausalLM, prompt: list[int], steps: int) -> list[int]:
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt) :]


@pytest.fixture(scope="module")
def base() -> KimiK2ForCausalLM:
    return build_model(get_preset("debug"), dtype=torch.float64, seed=1).eval()


@pytest.fixture(scope="module")
def adapters(base: KimiK2ForCausalLM, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("lora")
    return {"a": write_adapter(root / "a", base, 1), "b": write_adapter(root / "b", base, 2)}


def engine_with(model: KimiK2ForCausalLM, adapters: dict[str, Path], **cfg: int) -> LLMEngine:
    served = copy.deepcopy(model)
    adapter_set = AdapterSet(served)
    for name, path in adapters.items():
        adapter_set.add(name, path)
    config = EngineConfig(block_size=8, num_blocks=48, max_num_seqs=6, max_num_batched_tokens=32)
    return LLMEngine(served, ByteTokenizer(vocab_size=512), config, adapters=adapter_set)


def test_one_batch_mixes_base_and_adapters_each_equal_to_its_merged_model(
    base: KimiK2ForCausalLM, adapters: dict[str, Path]
) -> None:
    engine = engine_with(base, adapters)
    prompts = {None: list(range(20, 45)), "a": list(range(20, 45)), "b": list(range(30, 39))}
    ids = {
        name: engine.add_request(
            prompt, SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True, adapter=name)
        )
        for name, prompt in prompts.items()
    }
    out: dict[str, list[int]] = {rid: [] for rid in ids.values()}
    widest = 0
    while engine.has_unfinished_requests():
        for delta in engine.step():
            out[delta.request_id] += delta.token_ids
        widest = max(widest, len(engine.scheduler.running))
    assert widest == 3  # all three ran in the same steps
    assert out[ids[None]] == reference(base, prompts[None], 8)
    for name in ("a", "b"):
        assert out[ids[name]] == reference(merged(base, adapters[name]), prompts[name], 8), name
    assert out[ids["a"]] != reference(base, prompts["a"], 8)  # the adapter matters


def test_prefix_pages_are_never_shared_across_adapters(
    base: KimiK2ForCausalLM, adapters: dict[str, Path]
) -> None:
    engine = engine_with(base, adapters)
    prompt = list(range(50, 90))
    params = {n: SamplingParams(temperature=0.0, max_tokens=2, adapter=n) for n in ("a", "b")}
    manager = engine.block_manager
    engine.generate([prompt], params["a"])
    before = manager.prefix_hit_tokens
    (other,) = engine.generate([prompt], params["b"])[0]
    assert manager.prefix_hit_tokens == before
    assert other.token_ids == reference(merged(base, adapters["b"]), prompt, 2)
    engine.generate([prompt], params["a"])
    assert manager.prefix_hit_tokens > before


def test_bad_adapters_fail_at_start_with_the_reason(
    base: KimiK2ForCausalLM, adapters: dict[str, Path], tmp_path: Path
) -> None:
    adapter_set = AdapterSet(copy.deepcopy(base))
    with pytest.raises(ValueError, match=r"--lora x=.*nowhere.*no PEFT adapter config"):
        adapter_set.add("x", tmp_path / "nowhere")
    routed = write_adapter(tmp_path / "routed", base, 3, routed=True)
    with pytest.raises(ValueError, match="routed experts.*lora-merge"):
        adapter_set.add("r", routed)
    other = build_model(get_preset("debug").replace(q_lora_rank=16), seed=0)
    with pytest.raises(ValueError, match="model expects.*trained on another base model"):
        AdapterSet(other).add("a", adapters["a"])
    adapter_set.add("a", adapters["a"])
    with pytest.raises(ValueError, match="given twice"):
        adapter_set.add("a", adapters["a"])
    assert adapter_set.names == ["a"]


def test_a_request_for_an_unknown_adapter_is_refused(
    base: KimiK2ForCausalLM, adapters: dict[str, Path]
) -> None:
    engine = engine_with(base, {"a": adapters["a"]})
    with pytest.raises(ValueError, match="unknown LoRA adapter 'zz'"):
        engine.add_request([1, 2, 3], SamplingParams(adapter="zz"))
