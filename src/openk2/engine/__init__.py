"""Inference engine: continuous batching over the paged MLA latent cache.

Public API: `LLMEngine` (sync: `add_request`, `step`, `abort_request`, `generate`),
`AsyncLLMEngine` (background thread, `async generate()` streams), `EngineConfig`,
`SamplingParams`, `RequestOutput`, `EngineStats`, `ContextLengthError`.
"""

from openk2.engine.async_engine import AsyncLLMEngine, EngineDeadError
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import ContextLengthError, LLMEngine
from openk2.engine.outputs import EngineStats, RequestOutput
from openk2.engine.sampling_params import SamplingParams

__all__ = [
    "AsyncLLMEngine",
    "ContextLengthError",
    "EngineConfig",
    "EngineDeadError",
    "EngineStats",
    "LLMEngine",
    "RequestOutput",
    "SamplingParams",
]
