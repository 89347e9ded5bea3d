"""The serving engines `openk2 deploy` drives and the options each one documents.

`options` lists every flag the engine accepts that openk2 may emit (taken from each engine's
documented server arguments and the Kimi recipes, k26-model.md §9); `commands.py` refuses to
emit anything else, and the tests check every emitted flag against this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Engine:
    """One engine's launch command and its documented options."""

    name: str
    command: tuple[str, ...]
    model_flag: str | None
    """None: the model is the first positional argument."""
    options: frozenset[str]
    kv_dtypes: dict[str, str]
    """openk2 KV dtype -> the engine's value for its KV-dtype flag."""
    memory_fraction: float
    """Default share of each GPU the engine may take (weights + KV + activations)."""
    source: str

    def accepts(self, flag: str) -> bool:
        return flag in self.options


_COMMON_SGLANG = frozenset({
    "--model-path", "--tp", "--dp", "--enable-dp-attention", "--context-length", "--kv-cache-dtype",
    "--tool-call-parser", "--reasoning-parser", "--trust-remote-code", "--mem-fraction-static",
    "--host", "--port", "--served-model-name", "--chat-template", "--tensor-parallel-size",
    "--chunked-prefill-size", "--max-running-requests", "--max-total-tokens",
    "--enable-p2p-check", "--disable-shared-experts-fusion",
})

VLLM = Engine(
    name="vllm", command=("vllm", "serve"), model_flag=None,
    options=frozenset({
        "--tensor-parallel-size", "--data-parallel-size", "--enable-expert-parallel",
        "--max-model-len", "--kv-cache-dtype", "--mm-encoder-tp-mode", "--tool-call-parser",
        "--reasoning-parser", "--enable-auto-tool-choice", "--trust-remote-code",
        "--gpu-memory-utilization", "--max-num-batched-tokens", "--host", "--port",
        "--served-model-name", "--chat-template", "--moe-backend",
        "--distributed-executor-backend",
    }),
    kv_dtypes={"bf16": "auto", "fp8": "fp8"}, memory_fraction=0.90,
    source="vLLM `vllm serve --help` (engine args) and vllm-project/recipes Kimi-K2.5/K2.6",
)
SGLANG = Engine(
    name="sglang", command=("sglang", "serve"), model_flag="--model-path",
    options=_COMMON_SGLANG, kv_dtypes={"bf16": "auto", "fp8": "fp8_e4m3"},
    memory_fraction=0.88,
    source="SGLang server arguments and sgl-project/sgl-cookbook Kimi-K2.6",
)
KTRANSFORMERS = Engine(
    name="ktransformers", command=("python", "-m", "sglang.launch_server"),
    model_flag="--model",
    options=_COMMON_SGLANG | {"--model", "--kt-amx-weight-path", "--kt-cpuinfer",
                              "--kt-threadpool-count", "--kt-num-gpu-experts",
                              "--kt-amx-method"},
    kv_dtypes={"bf16": "auto", "fp8": "fp8_e4m3"}, memory_fraction=0.98,
    source="kvcache-ai/ktransformers SGLang integration; Kimi-K2.5 docs/deploy_guidance.md",
)
ENGINES: dict[str, Engine] = {e.name: e for e in (VLLM, SGLANG, KTRANSFORMERS)}

KIMI_PARSER = "kimi_k2"
"""Tool-call and reasoning parser name in every engine (k26-model.md §9)."""
GPUS_PER_NODE = 8
"""An HGX/MI300 node; past this a layout spans nodes."""
AMD_MLA_HEADS_MULTIPLE = 16
"""SGLang's AITER MLA kernel needs attention heads per GPU to be a multiple of 16."""


def get_engine(name: str) -> Engine:
    """The engine called `name`; unknown names list the known ones."""
    try:
        return ENGINES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None
