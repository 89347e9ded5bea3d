"""An adapter saved by openk2 meets vLLM's LoRA loader on a DeepseekV3 model, checked against the
loader's documented rules (vLLM itself cannot be installed here: it pulls CUDA torch).

The rules, from vllm-project/vllm:
- `vllm/lora/peft_helper.py` (`PEFTHelper.from_dict`): adapter_config.json must carry `r`,
  `lora_alpha` and `target_modules`; `modules_to_save` set or `use_dora: true` is refused; the
  scale is lora_alpha / r (lora_alpha / √r with `use_rslora`).
- `vllm/lora/lora_model.py` (`LoRAModel.from_local_checkpoint`): tensors come from
  `adapter_model.safetensors`; each key, minus its `base_model.model.` prefix and its
  `.lora_A.weight` / `.lora_B.weight` suffix, names a module whose last component must be one of
  the model's expected LoRA modules, else the whole adapter is refused.
- `vllm/model_executor/models/deepseek_v2.py` (`DeepseekV3ForCausalLM`, `SupportsLoRA`): with
  q_lora_rank set, `packed_modules_mapping` expands `fused_qkv_a_proj` to `q_a_proj` +
  `kv_a_proj_with_mqa` and `gate_up_proj` to `gate_proj` + `up_proj`; `q_b_proj`, `kv_b_proj`,
  `o_proj` and `down_proj` are plain linears. Module paths follow the HF checkpoint names, which
  are openk2's (`model.layers.{i}.self_attn...`, `mlp.shared_experts...`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from openk2.model import build_model, get_preset
from openk2.train.lora import apply_lora
from openk2.train.peft_format import save_peft_adapter

VLLM_DEEPSEEK_V3_LORA_MODULES = frozenset({
    "q_a_proj", "kv_a_proj_with_mqa",  # packed into fused_qkv_a_proj
    "gate_proj", "up_proj",  # packed into gate_up_proj
    "q_b_proj", "kv_b_proj", "o_proj", "down_proj",
})  # fmt: skip
PEFT_PREFIX = "base_model.model."


def _saved_adapter(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model = build_model(get_preset("debug"), seed=0)
    targets = sorted(VLLM_DEEPSEEK_V3_LORA_MODULES)
    apply_lora(model, targets=targets, rank=4, alpha=8, routed_experts=False)
    return model, save_peft_adapter(model, tmp_path / "adapter", base_model=None)


def test_config_has_the_fields_vllm_requires_and_none_it_refuses(tmp_path: Path) -> None:
    _, adapter = _saved_adapter(tmp_path)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert {"r", "lora_alpha", "target_modules"} <= set(config)
    assert isinstance(config["r"], int) and config["r"] == 4
    assert config["lora_alpha"] / config["r"] == 2.0 and not config.get("use_rslora")
    assert not config.get("modules_to_save") and config.get("use_dora") is False
    assert set(config["target_modules"]) <= VLLM_DEEPSEEK_V3_LORA_MODULES


def test_every_tensor_key_names_an_expected_module_with_peft_shapes(tmp_path: Path) -> None:
    model, adapter = _saved_adapter(tmp_path)
    modules = dict(model.named_modules())
    seen: dict[str, set[str]] = {}
    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            assert key.startswith(PEFT_PREFIX), key
            module, ab, weight = key[len(PEFT_PREFIX) :].rsplit(".", 2)
            assert weight == "weight" and ab in ("lora_A", "lora_B"), key
            assert module.rsplit(".", 1)[-1] in VLLM_DEEPSEEK_V3_LORA_MODULES, key
            assert ".mlp.experts." not in module  # routed experts are refused on save
            out_f, in_f = modules[module].weight.shape
            expected = (4, in_f) if ab == "lora_A" else (out_f, 4)
            assert tuple(f.get_slice(key).get_shape()) == expected, key
            seen.setdefault(module, set()).add(ab)
    assert seen and all(pair == {"lora_A", "lora_B"} for pair in seen.values())
    assert any(".shared_experts." in m for m in seen) and any(".self_attn." in m for m in seen)
