"""The rules a `ModelConfig` must meet, each naming the offending config.json key and its value.

Checks run in order: every field has its JSON type (so no later comparison can raise a
TypeError), then ranges, routing arithmetic, unsupported features, RoPE and token ids. Values
are always spelled with `repr`, so a string "64" reads '64' and never passes for a number.
`check_model_type` looks at the raw dict, before a `ModelConfig` exists.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import types
import typing
from typing import Any

log = logging.getLogger(__name__)

KNOWN_MODEL_TYPES = ("deepseek_v3", "kimi_k2", "kimi_k25")
"""`model_type` values of the DeepSeek-V3 / Kimi K2 family (K2.5 / K2.6 wrap it as kimi_k25)."""
CONFIG_DTYPES = ("bfloat16", "float16", "float32", "float64")
"""Float dtypes a config.json `dtype` / `torch_dtype` may name (a `torch.` prefix is allowed)."""

_POSITIVE_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "moe_intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "n_routed_experts",
    "num_experts_per_tok",
    "moe_layer_freq",
    "n_group",
    "topk_group",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "max_position_embeddings",
)
_YARN_NUMBERS = ("beta_fast", "beta_slow", "mscale", "mscale_all_dim")


def validate(cfg: Any) -> None:
    """Reject configs the model cannot run, naming the offending key."""
    check_types(cfg)
    for name in _POSITIVE_INT_FIELDS:
        _require_int(name, getattr(cfg, name), minimum=1)
    _require_int("n_shared_experts", cfg.n_shared_experts, minimum=0)
    _require_int("first_k_dense_replace", cfg.first_k_dense_replace, minimum=0)
    _require_int("num_nextn_predict_layers", cfg.num_nextn_predict_layers, minimum=0)
    if cfg.q_lora_rank is not None:
        _require_int("q_lora_rank", cfg.q_lora_rank, minimum=1)
    _validate_routing(cfg)
    _validate_unsupported(cfg)
    _validate_rope(cfg)
    for name in ("bos_token_id", "pad_token_id", "eos_token_id"):
        _validate_token_ids(name, getattr(cfg, name), cfg.vocab_size)
    for name in ("rms_norm_eps", "initializer_range", "routed_scaling_factor"):
        value = getattr(cfg, name)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if cfg.dtype.removeprefix("torch.") not in CONFIG_DTYPES:
        raise ValueError(f"dtype {cfg.dtype!r} is not supported; use one of {CONFIG_DTYPES}")


# ---------------------------------------------------------------------------------------------
# JSON types, from the dataclass annotations
# ---------------------------------------------------------------------------------------------


def check_types(cfg: Any) -> None:
    """Every field holds a value of its annotated JSON type (bool is never an int here)."""
    for name, hint in _hints(type(cfg)).items():
        value = getattr(cfg, name)
        if not _matches(value, hint):
            raise ValueError(f"{name} must be {_describe(hint)}, got {value!r}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _matches(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool or hint is str:
        return isinstance(value, hint)
    if hint is int or hint is float:
        allowed = int if hint is int else (int, float)
        return isinstance(value, allowed) and not isinstance(value, bool)
    if typing.get_origin(hint) is dict:
        return isinstance(value, dict)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    raise TypeError(f"no JSON type rule for annotation {hint!r}")


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"a list of {_describe(typing.get_args(hint)[0]).removeprefix('an ')}s"
    names = {type(None): "null", bool: "true or false", str: "a string", int: "an integer"}
    return names.get(hint, "a number" if hint is float else "a JSON object")


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _validate_routing(cfg: Any) -> None:
    experts, groups = cfg.n_routed_experts, cfg.n_group
    if cfg.num_experts_per_tok > experts:
        raise ValueError(
            f"num_experts_per_tok ({cfg.num_experts_per_tok}) exceeds n_routed_experts ({experts})"
        )
    if experts % groups:
        raise ValueError(f"n_routed_experts ({experts}) must be divisible by n_group ({groups})")
    if cfg.topk_group > groups:
        raise ValueError(f"topk_group ({cfg.topk_group}) exceeds n_group ({groups})")
    if groups > 1 and experts // groups < 2:
        raise ValueError("group-limited routing needs at least 2 experts per group")
    if cfg.num_experts_per_tok > cfg.topk_group * (experts // groups):
        raise ValueError(
            f"num_experts_per_tok ({cfg.num_experts_per_tok}) exceeds the experts reachable in "
            f"topk_group={cfg.topk_group} groups of {experts // groups}"
        )
    if cfg.first_k_dense_replace > cfg.num_hidden_layers:
        raise ValueError("first_k_dense_replace exceeds num_hidden_layers")


def _validate_unsupported(cfg: Any) -> None:
    checks = (
        ("topk_method", cfg.topk_method, "noaux_tc"),
        ("scoring_func", cfg.scoring_func, "sigmoid"),
        ("hidden_act", cfg.hidden_act, "silu"),
        ("tie_word_embeddings", cfg.tie_word_embeddings, False),
        ("attention_bias", cfg.attention_bias, False),
    )
    for name, value, wanted in checks:
        if value != wanted:
            raise ValueError(f"{name}={value!r} is not supported (the K2 family uses {wanted!r})")


def _validate_rope(cfg: Any) -> None:
    if cfg.qk_rope_head_dim % 2:
        raise ValueError(f"qk_rope_head_dim must be even, got {cfg.qk_rope_head_dim!r}")
    if not cfg.rope_theta > 1:
        raise ValueError(f"rope_theta must be > 1, got {cfg.rope_theta!r}")
    scaling = cfg.rope_scaling
    if scaling is None or scaling["type"] == "default":
        return
    if scaling["type"] != "yarn":
        raise ValueError(f"rope_scaling type {scaling['type']!r} is not supported (only 'yarn')")
    factor = scaling.get("factor")
    if not _is_number(factor) or factor < 1:
        raise ValueError(f"rope_scaling.factor must be a number >= 1, got {factor!r}")
    original = scaling.get("original_max_position_embeddings")
    if isinstance(original, bool) or not isinstance(original, int) or original < 1:
        raise ValueError(
            "rope_scaling.original_max_position_embeddings must be a positive int, "
            f"got {original!r}"
        )
    for key in _YARN_NUMBERS:
        value = scaling.get(key)
        if value is not None and not (_is_number(value) and math.isfinite(value)):
            raise ValueError(f"rope_scaling.{key} must be a finite number, got {value!r}")
    if not isinstance(scaling.get("truncate", True), bool):
        truncate = scaling["truncate"]
        raise ValueError(f"rope_scaling.truncate must be true or false, got {truncate!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate_token_ids(name: str, value: Any, vocab_size: int) -> None:
    ids = value if isinstance(value, list) else [value]
    for token in ids:
        if token is None:
            continue
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < vocab_size:
            raise ValueError(f"{name} {token!r} is not a token id in [0, {vocab_size})")


# ---------------------------------------------------------------------------------------------
# model_type, on the raw config.json dict
# ---------------------------------------------------------------------------------------------


def check_model_type(raw: dict[str, Any], required: list[str]) -> None:
    """Refuse a foreign `model_type`, unless its keys are DeepSeek-V3's: then warn and go on.

    `raw` is the whole config.json dict (K2.5 / K2.6 nest the text model in `text_config`);
    `required` are the keys a `ModelConfig` cannot do without.
    """
    text = raw.get("text_config", raw)
    sources = [("model_type", raw)]
    if text is not raw:
        sources.append(("text_config.model_type", text))
    for where, source in sources:
        kind = source.get("model_type")
        if kind is None or kind in KNOWN_MODEL_TYPES:
            continue
        missing = [key for key in required if key not in text]
        if missing:
            raise ValueError(
                f"{where} {kind!r} is not a DeepSeek-V3 / Kimi K2 model (openk2 runs "
                f"{', '.join(KNOWN_MODEL_TYPES)}), and the config lacks the DeepSeek-V3 keys "
                f"{', '.join(missing)}"
            )
        log.warning(
            "%s %r is not one openk2 knows (%s); its keys are DeepSeek-V3's, so it is loaded "
            "as a DeepSeek-V3 model",
            where,
            kind,
            ", ".join(KNOWN_MODEL_TYPES),
        )
