"""The launch argv for a `Plan`, in each engine's own flags (and only documented ones)."""

from __future__ import annotations

from dataclasses import dataclass

from openk2.deploy.engines import GPUS_PER_NODE, KIMI_PARSER
from openk2.deploy.plan import Plan

KT_CPU_THREADS = 64
KT_NUMA_POOLS = 2
"""The K2.5 deploy guide's `--kt-cpuinfer 64 --kt-threadpool-count 2` (2 sockets)."""
KT_MAX_RUNNING = 48


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Where the server listens and what it calls the model."""

    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str | None = None
    chat_template: str | None = None


def build_argv(plan: Plan, serve: ServeOptions) -> list[str]:
    """The full command line; raises if a builder emits a flag the engine does not document."""
    builder = {"vllm": _vllm, "sglang": _sglang, "ktransformers": _kt}[plan.engine.name]
    engine = plan.engine
    model = [plan.model_source] if engine.model_flag is None else [engine.model_flag,
                                                                    plan.model_source]
    args = model + builder(plan) + _serve_flags(plan, serve)
    bad = [a for a in args if a.startswith("--") and not engine.accepts(a)]
    if bad:
        raise AssertionError(f"{engine.name} does not document {bad}")
    return [*engine.command, *args]


def _kimi_flags() -> list[str]:
    return ["--trust-remote-code", "--tool-call-parser", KIMI_PARSER,
            "--reasoning-parser", KIMI_PARSER]


def _vllm(plan: Plan) -> list[str]:
    lay = plan.layout
    args = ["--tensor-parallel-size", str(lay.tp)]
    if lay.dp > 1:
        args += ["--data-parallel-size", str(lay.dp)]
    if lay.expert_parallel:
        args.append("--enable-expert-parallel")
    args += ["--max-model-len", str(plan.context),
             "--kv-cache-dtype", plan.engine.kv_dtypes[plan.kv_dtype],
             "--gpu-memory-utilization", f"{plan.memory_fraction:.2f}",
             "--max-num-batched-tokens", str(plan.chunk_tokens)]
    if plan.model.vision is not None:
        args += ["--mm-encoder-tp-mode", "data"]  # the small ViT runs data-parallel
    if plan.gpus.gpu.name in ("MI350X", "MI355X"):
        args += ["--moe-backend", "flydsl"]
    if lay.gpus > GPUS_PER_NODE:
        args += ["--distributed-executor-backend", "ray"]  # vLLM spans nodes through Ray
    return args + _kimi_flags() + ["--enable-auto-tool-choice"]


def _sglang(plan: Plan) -> list[str]:
    lay = plan.layout
    args = ["--tp", str(lay.tp)]
    if lay.dp > 1:
        args += ["--dp", str(lay.dp)]
    if lay.attention_dp > 1:
        args += ["--dp", str(lay.attention_dp), "--enable-dp-attention"]
    return args + ["--context-length", str(plan.context),
                   "--kv-cache-dtype", plan.engine.kv_dtypes[plan.kv_dtype],
                   "--mem-fraction-static", f"{plan.memory_fraction:.2f}",
                   "--chunked-prefill-size", str(plan.chunk_tokens)] + _kimi_flags()


def _kt(plan: Plan) -> list[str]:
    return ["--kt-amx-weight-path", plan.model_source,
            "--kt-cpuinfer", str(KT_CPU_THREADS), "--kt-threadpool-count", str(KT_NUMA_POOLS),
            "--kt-num-gpu-experts", str(plan.gpu_experts), "--kt-amx-method", "AMXINT4",
            "--mem-fraction-static", f"{plan.memory_fraction:.2f}",
            "--chunked-prefill-size", str(plan.chunk_tokens),
            "--max-running-requests", str(KT_MAX_RUNNING),
            "--max-total-tokens", str(plan.context), "--context-length", str(plan.context),
            "--kv-cache-dtype", plan.engine.kv_dtypes[plan.kv_dtype],
            "--tensor-parallel-size", str(plan.layout.tp), "--enable-p2p-check",
            "--disable-shared-experts-fusion"] + _kimi_flags()


def _serve_flags(plan: Plan, serve: ServeOptions) -> list[str]:
    args = ["--host", serve.host, "--port", str(serve.port)]
    if serve.served_model_name:
        args += ["--served-model-name", serve.served_model_name]
    if serve.chat_template:
        args += ["--chat-template", serve.chat_template]
    return args
