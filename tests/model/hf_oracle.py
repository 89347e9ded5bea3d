"""transformers 5.23 `DeepseekV3ForCausalLM` as a numerical oracle for openk2's model.

Reusable by any test: build a tiny random HF model from an openk2 `ModelConfig`, convert between
HF 5.23's in-memory names (fused experts) and the original checkpoint names openk2 uses, and get
an openk2 model carrying the same weights.

HF 5.23 quirks handled here: it fuses routed experts into `mlp.experts.gate_up_proj [E, 2I, D]`
(cat(gate, up) on the output dim) and `mlp.experts.down_proj [E, D, I]`; it needs
`rope_interleave=True` for K2 weights (the config's own value is passed, so `False` is tested
too), `tie_word_embeddings=False`, and
`num_key_value_heads == num_attention_heads`.
"""

from __future__ import annotations

import re

import torch
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

from openk2.model import KimiK2ForCausalLM, ModelConfig

_FUSED = re.compile(r"^(model\.layers\.\d+\.mlp\.experts)\.(gate_up_proj|down_proj)$")
_SPLIT = re.compile(
    r"^(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$"
)


def hf_config(config: ModelConfig) -> DeepseekV3Config:
    """The transformers config for an openk2 config (eager attention for exact comparisons)."""
    values = config.to_hf_json()
    values.update(
        rope_interleave=config.rope_interleave,
        tie_word_embeddings=False,
        num_key_value_heads=config.num_attention_heads,
    )
    hf = DeepseekV3Config.from_dict(values)
    hf._attn_implementation = "eager"
    return hf


def hf_to_openk2_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF 5.23 in-memory names -> original checkpoint names (split fused experts)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in hf_state.items():
        match = _FUSED.match(name)
        if match is None:
            out[name] = tensor
            continue
        prefix, kind = match.groups()
        for expert, weight in enumerate(tensor):
            if kind == "down_proj":
                out[f"{prefix}.{expert}.down_proj.weight"] = weight
            else:
                gate, up = weight.chunk(2, dim=0)
                out[f"{prefix}.{expert}.gate_proj.weight"] = gate
                out[f"{prefix}.{expert}.up_proj.weight"] = up
    return out


def openk2_to_hf_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original checkpoint names -> HF 5.23 in-memory names (fuse experts)."""
    out: dict[str, torch.Tensor] = {}
    experts: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
    for name, tensor in state.items():
        match = _SPLIT.match(name)
        if match is None:
            out[name] = tensor
            continue
        prefix, expert, kind = match.groups()
        experts.setdefault(prefix, {}).setdefault(int(expert), {})[kind] = tensor
    for prefix, by_id in experts.items():
        ordered = [by_id[e] for e in sorted(by_id)]
        out[f"{prefix}.gate_up_proj"] = torch.stack(
            [torch.cat([w["gate_proj"], w["up_proj"]]) for w in ordered]
        )
        out[f"{prefix}.down_proj"] = torch.stack([w["down_proj"] for w in ordered])
    return out


@torch.no_grad()
def random_hf_model(config: ModelConfig, seed: int = 0, std: float = 0.08) -> DeepseekV3ForCausalLM:
    """A fp32 HF model whose every tensor (norm gains and router bias too) is random."""
    torch.manual_seed(seed)
    model = DeepseekV3ForCausalLM(hf_config(config)).eval()
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
            tensor.copy_(1 + 0.2 * torch.randn(tensor.shape, generator=generator))
        elif name.endswith("e_score_correction_bias"):
            tensor.copy_(0.05 * torch.randn(tensor.shape, generator=generator))
        else:
            tensor.copy_(std * torch.randn(tensor.shape, generator=generator))
    return model


def openk2_from_hf(hf_model: DeepseekV3ForCausalLM, config: ModelConfig) -> KimiK2ForCausalLM:
    """An openk2 model (fp32, CPU) carrying exactly the HF model's weights."""
    with torch.device("meta"):
        model = KimiK2ForCausalLM(config)
    model.to_empty(device="cpu")
    state = hf_to_openk2_state_dict(hf_model.state_dict())
    model.load_state_dict(state, strict=True)
    return model.eval()
