"""openk2 checkpoint tensors -> llama.cpp `deepseek2` tensors (names and layouts).

The renames are gguf-py's own table (`gguf.get_tensor_name_map`); three layouts differ:
- `kv_b_proj` (H*(nope+v), kv_lora) is split per head into `attn_k_b` (H, kv_lora, nope),
  already transposed for the absorbed-MLA decode, and `attn_v_b` (H, v, kv_lora);
- routed experts `mlp.experts.{e}.{gate,up,down}_proj` are stacked into one (E, out, in)
  tensor per projection (`ffn_*_exps`);
- `e_score_correction_bias` is gguf-py's `exp_probs_b.bias`.
llama.cpp rotates adjacent pairs (2i, 2i+1) for deepseek2, the layout of K2's own weights; a
checkpoint with `rope_interleave: false` (half-split pairs) has its rope rows reordered.
Arrays come out as float32 numpy in torch's (row-major) shape; GGUF's `ne` is the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import gguf
import numpy as np
import torch

from openk2.model.config import ModelConfig

_EXPERT = re.compile(r"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$")
_BIAS_SUFFIX = "e_score_correction_bias"


def gguf_tensors(config: ModelConfig,
                 state: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array) for every text tensor of a checkpoint, experts stacked."""
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.DEEPSEEK2, config.num_hidden_layers)
    experts: dict[tuple[int, str], dict[int, torch.Tensor]] = {}
    for name, tensor in state:
        if (match := _EXPERT.match(name)) is not None:
            layer, index, proj = int(match[1]), int(match[2]), match[3]
            group = experts.setdefault((layer, proj), {})
            group[index] = tensor
            if len(group) == config.n_routed_experts:
                stacked = torch.stack([group[e] for e in range(config.n_routed_experts)])
                del experts[(layer, proj)]
                hf = f"model.layers.{layer}.mlp.experts.{proj}_proj.weight"
                yield _gguf_name(names, hf), _array(stacked)
            continue
        yield from _convert(config, names, name, tensor)
    if experts:
        (layer, proj), group = next(iter(experts.items()))
        raise ValueError(f"layer {layer} has {len(group)} of {config.n_routed_experts} routed "
                         f"experts' {proj}_proj weights")


def _convert(config: ModelConfig, names: gguf.TensorNameMap, name: str,
             tensor: torch.Tensor) -> Iterator[tuple[str, np.ndarray]]:
    if name.endswith("kv_b_proj.weight"):
        k_b, v_b = split_kv_b(config, tensor)
        yield _gguf_name(names, name.replace("kv_b_proj", "k_b_proj")), _array(k_b)
        yield _gguf_name(names, name.replace("kv_b_proj", "v_b_proj")), _array(v_b)
        return
    if name.endswith(_BIAS_SUFFIX):
        name = name.removesuffix(_BIAS_SUFFIX) + "e_score_correction.bias"
    if not config.rope_interleave:
        tensor = _interleave_rope_rows(config, name, tensor)
    yield _gguf_name(names, name), _array(tensor)


def split_kv_b(config: ModelConfig, kv_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`kv_b_proj` -> (k_b (H, kv_lora, nope), v_b (H, v, kv_lora)): each head's rows are
    its key-nope rows, then its value rows."""
    heads, nope, v = config.num_attention_heads, config.qk_nope_head_dim, config.v_head_dim
    per_head = kv_b.reshape(heads, nope + v, config.kv_lora_rank)
    k_b, v_b = per_head.split([nope, v], dim=1)
    return k_b.transpose(1, 2).contiguous(), v_b.contiguous()


def _interleave_rope_rows(config: ModelConfig, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Reorder the rope output rows of q and kv_a from half-split (i, i+R/2) to adjacent pairs."""
    rope = config.qk_rope_head_dim
    order = torch.arange(rope).reshape(2, rope // 2).T.reshape(-1)
    if name.endswith("kv_a_proj_with_mqa.weight"):
        lora = config.kv_lora_rank
        return torch.cat([tensor[:lora], tensor[lora:][order]])
    if name.endswith(("q_b_proj.weight", "q_proj.weight")):
        per_head = tensor.reshape(config.num_attention_heads, config.qk_head_dim, -1)
        nope = config.qk_nope_head_dim
        fixed = torch.cat([per_head[:, :nope], per_head[:, nope:][:, order]], dim=1)
        return fixed.reshape(tensor.shape)
    return tensor


def _gguf_name(names: gguf.TensorNameMap, name: str) -> str:
    mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
    if mapped is None:
        raise ValueError(f"checkpoint tensor {name!r} has no llama.cpp deepseek2 counterpart")
    return mapped


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float32).contiguous().numpy()
