"""The K2.6 architecture in PyTorch. Imports only torch and the standard library.

Public API: `ModelConfig`, `get_preset`, `PRESETS`, `KimiK2ForCausalLM`, `build_model`,
`LatentCache`, `ContiguousLatentCache`, `enable_packed_gemms` (CPU inference GEMMs).
"""

from openk2.model.cache import ContiguousLatentCache, LatentCache
from openk2.model.config import PRESETS, ModelConfig, get_preset
from openk2.model.layers.linear import enable_packed_gemms
from openk2.model.model import KimiK2ForCausalLM, build_model

__all__ = [
    "PRESETS",
    "ContiguousLatentCache",
    "KimiK2ForCausalLM",
    "LatentCache",
    "ModelConfig",
    "build_model",
    "enable_packed_gemms",
    "get_preset",
]
