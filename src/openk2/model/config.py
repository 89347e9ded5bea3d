"""Model configuration: one slotted dataclass whose fields are the HF `config.json` keys.

`ModelConfig.from_hf_json` reads a K2 / K2-Thinking `config.json` (DeepseekV3 schema, raw
`model_type: kimi_k2`) or a K2.5 / K2.6 `kimi_k25` config (it uses the nested `text_config`).
Unknown keys are ignored, so real files load unchanged; everything kept is validated in
`__post_init__` (rules in `config_checks.py`). `load_config` is the one reader of a
checkpoint's config.json: its errors are `ConfigError`s that name the file. `to_hf_json`
writes a dict that transformers' `DeepseekV3Config` loads.

Presets (`PRESETS`, `get_preset`): `debug` for unit tests, `tiny` (~10M params) and `small`
(~170M total MoE) for CPU demos and benchmarks, `kimi-k2.6` with the real dimensions.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openk2.model.config_checks import check_model_type, check_types, validate
from openk2.model.errors import ConfigError

CONFIG_NAME = "config.json"
_KIMI_K25_FALLBACK_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "tie_word_embeddings",
    "quantization_config",
    "dtype",
    "torch_dtype",
)
"""Keys a `kimi_k25` config may carry at top level only; copied into the text config if absent."""

@dataclass(kw_only=True, slots=True)
class ModelConfig:
    """Hyperparameters of the K2 / K2.6 text model (DeepSeek-V3 architecture)."""

    vocab_size: int
    """Rows of `embed_tokens` and `lm_head` (K2.6: 163,584 BPE ranks + 256 reserved specials)."""
    hidden_size: int
    """Residual stream width d."""
    intermediate_size: int
    """SwiGLU width of the dense layers (the first `first_k_dense_replace`)."""
    moe_intermediate_size: int
    """SwiGLU width of one routed expert; a shared expert is `n_shared_experts` times wider."""
    num_hidden_layers: int
    """Decoder layers."""
    num_attention_heads: int
    """MLA query heads H."""
    num_key_value_heads: int | None = None
    """Irrelevant under MLA (every head reads the same latent); defaults to the head count."""
    n_shared_experts: int = 1
    """Always-on experts per MoE layer, fused into one SwiGLU of width n * moe_intermediate_size."""
    n_routed_experts: int
    """Routed experts E per MoE layer."""
    num_experts_per_tok: int
    """Routed experts selected per token (top-k)."""
    first_k_dense_replace: int = 1
    """The first k layers use a dense SwiGLU instead of MoE."""
    moe_layer_freq: int = 1
    """After the dense prefix, layer i is MoE iff i % moe_layer_freq == 0."""
    n_group: int = 1
    """Expert groups for group-limited routing (1 disables it)."""
    topk_group: int = 1
    """Groups a token may route into when n_group > 1."""
    topk_method: str = "noaux_tc"
    """Router selection rule; only DeepSeek-V3's bias-corrected top-k (`noaux_tc`) is supported."""
    scoring_func: str = "sigmoid"
    """Router score function; only `sigmoid` is supported."""
    norm_topk_prob: bool = True
    """Renormalise the selected experts' scores to sum to one."""
    routed_scaling_factor: float = 1.0
    """Multiplier on the routed experts' combined weights (K2: 2.827)."""
    q_lora_rank: int | None = None
    """Rank of the query down-projection; None means a plain `q_proj`."""
    kv_lora_rank: int
    """Width of the cached latent c_kv."""
    qk_nope_head_dim: int
    """Per-head query/key dimensions without rotary embedding."""
    qk_rope_head_dim: int
    """Per-head rotary dimensions (the single shared rope key has this width too)."""
    v_head_dim: int
    """Per-head value dimensions."""
    rms_norm_eps: float = 1e-6
    """Epsilon of the input, post-attention and final RMSNorms (not of q_a/kv_a norms)."""
    rope_theta: float = 10000.0
    """RoPE base."""
    rope_scaling: dict[str, Any] | None = None
    """YaRN parameters (`type`, `factor`, `original_max_position_embeddings`, `beta_fast`,
    `beta_slow`, `mscale`, `mscale_all_dim`); None for plain RoPE."""
    rope_interleave: bool = True
    """RoPE pairs: True rotates adjacent dims (2i, 2i+1), the layout of K2 / DeepSeek-V3 weights;
    False rotates dims (i, i + R/2), transformers' half-split `rotate_half` (DeepseekV3 key)."""
    max_position_embeddings: int = 4096
    """Longest supported context."""
    tie_word_embeddings: bool = False
    """Must be False: K2 has a separate `lm_head`."""
    bos_token_id: int | None = None
    """Beginning-of-sequence id."""
    eos_token_id: int | list[int] | None = None
    """End-of-sequence id(s)."""
    pad_token_id: int | None = None
    """Padding id (never produced by the model)."""
    hidden_act: str = "silu"
    """Activation inside SwiGLU; only `silu` is supported."""
    attention_bias: bool = False
    """Must be False: the K2 family has no biases."""
    initializer_range: float = 0.02
    """Std of the normal init of linear and embedding weights (`init_weights`)."""
    num_nextn_predict_layers: int = 0
    """MTP modules in the checkpoint; openk2 does not build them (K2 ships none)."""
    model_type: str = "kimi_k2"
    """HF `model_type` written back by `to_hf_json`."""
    dtype: str = "bfloat16"
    """Checkpoint dtype (HF `dtype`, formerly `torch_dtype`)."""
    quantization_config: dict[str, Any] | None = field(default=None, repr=False)
    """Checkpoint quantization metadata, carried for the weight loader (INT4 / FP8)."""

    def __post_init__(self) -> None:
        check_types(self)
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.rope_scaling is not None:
            self.rope_scaling = _normalise_rope_scaling(self.rope_scaling)
        self.dtype = self.dtype.removeprefix("torch.")
        validate(self)

    @property
    def qk_head_dim(self) -> int:
        """Query/key head width: nope + rope dims (192 for K2)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_dim(self) -> int:
        """Values cached per token and layer: kv_lora_rank + qk_rope_head_dim (576 for K2)."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    def is_moe_layer(self, layer_idx: int) -> bool:
        """Whether decoder layer `layer_idx` uses the MoE FFN (DeepSeek-V3 rule)."""
        return layer_idx >= self.first_k_dense_replace and layer_idx % self.moe_layer_freq == 0

    @property
    def num_moe_layers(self) -> int:
        """How many decoder layers are MoE."""
        return sum(self.is_moe_layer(i) for i in range(self.num_hidden_layers))

    @classmethod
    def from_hf_json(cls, source: str | Path | dict[str, Any]) -> ModelConfig:
        """Build from an already parsed config.json dict, or a path (see `load_config`)."""
        if not isinstance(source, dict):
            return load_config(source)
        raw = dict(source)
        text = _text_config(raw)
        if "rope_parameters" in text and text.get("rope_scaling") is None:
            text = _from_rope_parameters(text)
        if text.get("dtype") is None:
            text["dtype"] = text.get("torch_dtype")
        if text["dtype"] is None:
            del text["dtype"]
        fields = dataclasses.fields(cls)
        required = [f.name for f in fields if _required(f)]
        check_model_type(raw, required)
        missing = [name for name in required if name not in text]
        if missing:
            raise ValueError(f"model config is missing required keys: {', '.join(missing)}")
        names = {f.name for f in fields}
        return cls(**{k: v for k, v in text.items() if k in names})

    def to_hf_json(self) -> dict[str, Any]:
        """A DeepseekV3-schema config dict (what K2 ships; `DeepseekV3Config` loads it)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if out["quantization_config"] is None:
            del out["quantization_config"]
        out["architectures"] = ["DeepseekV3ForCausalLM"]
        out["rope_scaling"] = None if self.rope_scaling is None else dict(self.rope_scaling)
        return out

    def replace(self, **changes: Any) -> ModelConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def config_path(path: str | Path) -> Path:
    """The config.json a path means: inside a directory, itself, or next to a weights file."""
    path = Path(path)
    if path.is_dir():
        return path / CONFIG_NAME
    return path if path.suffix == ".json" else path.parent / CONFIG_NAME


def read_config_json(path: str | Path) -> dict[str, Any]:
    """config.json as a dict; any unreadable, non-JSON or non-object file is a `ConfigError`."""
    file = config_path(path)
    if not file.is_file():
        raise ConfigError("not found (a checkpoint needs its config.json)", file=file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=file) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON (truncated or corrupt?): {exc}", file=file) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"must hold a JSON object, got {type(data).__name__}", file=file)
    return data


def load_config(path: str | Path) -> ModelConfig:
    """The one way openk2 reads a checkpoint's config.json (inspect, generate, serve, train).

    Every problem (missing or corrupt file, wrong types, bad values, a foreign model_type) is a
    `ConfigError` whose message starts with the file's path.
    """
    raw = read_config_json(path)
    try:
        return ModelConfig.from_hf_json(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid config: {exc}", file=config_path(path)) from exc


def _text_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The text-model keys: `text_config` of a `kimi_k25` config, else the dict itself."""
    if "text_config" not in raw:
        return dict(raw)
    text = raw["text_config"]
    if not isinstance(text, dict):
        raise ValueError("`text_config` must be a JSON object")
    text = dict(text)
    for key in _KIMI_K25_FALLBACK_KEYS:
        if key not in text and key in raw:
            text[key] = raw[key]
    return text


def _from_rope_parameters(text: dict[str, Any]) -> dict[str, Any]:
    """Map transformers' newer `rope_parameters` (theta inside) onto `rope_theta`/`rope_scaling`."""
    params = text["rope_parameters"]
    if params is None:
        return text
    if not isinstance(params, dict):
        raise ValueError("`rope_parameters` must be a JSON object")
    text = dict(text)
    params = dict(params)
    if "rope_theta" in params:
        text["rope_theta"] = params.pop("rope_theta")
    kind = params.get("rope_type", params.get("type", "default"))
    text["rope_scaling"] = None if kind == "default" else params
    return text


def _normalise_rope_scaling(scaling: dict[str, Any]) -> dict[str, Any]:
    """Copy with a `type` key (older files say `type`, newer `rope_type`)."""
    out = dict(scaling)
    kind = out.get("type", out.get("rope_type"))
    if kind is None:
        raise ValueError("rope_scaling needs a `type` (or `rope_type`) key")
    out["type"] = kind
    out.pop("rope_type", None)
    return out


def _preset_ids(vocab_size: int) -> dict[str, int]:
    """Special ids of the openk2 presets: the first two of the 256 reserved slots at the end."""
    return {"bos_token_id": vocab_size - 256, "eos_token_id": vocab_size - 255}


_K26_YARN = {
    "type": "yarn",
    "factor": 64.0,
    "original_max_position_embeddings": 4096,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(
        vocab_size=512, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
        num_hidden_layers=3, num_attention_heads=4, n_routed_experts=8, num_experts_per_tok=2,
        q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
        routed_scaling_factor=2.827, rms_norm_eps=1e-5, rope_theta=50000.0,
        rope_scaling=dict(_K26_YARN, factor=4.0, original_max_position_embeddings=256),
        max_position_embeddings=1024, **_preset_ids(512),
    ),
    "tiny": dict(
        vocab_size=8192, hidden_size=256, intermediate_size=768, moe_intermediate_size=128,
        num_hidden_layers=4, num_attention_heads=4, n_routed_experts=16, num_experts_per_tok=4,
        q_lora_rank=128, kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
        routed_scaling_factor=2.827, rms_norm_eps=1e-5, rope_theta=50000.0,
        rope_scaling=dict(_K26_YARN, factor=4.0, original_max_position_embeddings=1024),
        max_position_embeddings=4096, **_preset_ids(8192),
    ),
    "small": dict(
        vocab_size=8192, hidden_size=768, intermediate_size=2048, moe_intermediate_size=256,
        num_hidden_layers=8, num_attention_heads=12, n_routed_experts=32, num_experts_per_tok=4,
        q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64,
        routed_scaling_factor=2.827, rms_norm_eps=1e-5, rope_theta=50000.0,
        rope_scaling=dict(_K26_YARN, factor=8.0, original_max_position_embeddings=1024),
        max_position_embeddings=8192, **_preset_ids(8192),
    ),
    "kimi-k2.6": dict(
        vocab_size=163840, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
        num_hidden_layers=61, num_attention_heads=64, n_routed_experts=384, num_experts_per_tok=8,
        q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
        v_head_dim=128, routed_scaling_factor=2.827, rms_norm_eps=1e-5, rope_theta=50000.0,
        rope_scaling=dict(_K26_YARN), max_position_embeddings=262144,
        bos_token_id=163584, eos_token_id=163586, pad_token_id=163839,
    ),
}  # fmt: skip
"""Named model sizes; every preset has K2's structure (MLA, 1 dense layer, shared expert, YaRN)."""


def get_preset(name: str) -> ModelConfig:
    """A fresh `ModelConfig` for a preset name (see `PRESETS`)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return ModelConfig(**PRESETS[name])
