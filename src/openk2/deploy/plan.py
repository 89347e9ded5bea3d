"""Choose a parallel layout, context length and KV dtype that fit, or refuse with the numbers.

Largest tensor parallelism first (what the Kimi recipes run: TP8 on 8xH200), capped by the
head count and, for SGLang on AMD, by AITER's heads-per-GPU rule; GPUs beyond one TP group
become data-parallel ranks (vLLM: DP + expert parallel; SGLang: replicas). A layout fits when
one GPU holds its weight share, a prefill chunk's activations, the workspace and the latent
cache of at least one full-length sequence. KTransformers keeps as many routed experts per
layer on the GPUs as fit and leaves the rest to the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from openk2.deploy.engines import AMD_MLA_HEADS_MULTIPLE, GPUS_PER_NODE, Engine
from openk2.deploy.hardware import GB, GpuSet
from openk2.deploy.memory import (
    WORKSPACE_BYTES,
    GpuFit,
    activation_bytes,
    kv_bytes_per_token,
    per_gpu_weights,
    weight_bytes,
)
from openk2.deploy.models import ModelShape

FALLBACK_CONTEXTS = (131072, 65536, 32768)
"""Context lengths tried, in order, when the model's maximum does not fit and none was asked."""
CHUNK_TOKENS = 8192
"""Prefill chunk (vLLM's --max-num-batched-tokens, SGLang's --chunked-prefill-size)."""
KT_CHUNK_TOKENS = 16384
"""KTransformers' prefill chunk (the K2.5 deploy guide's --chunked-prefill-size)."""
KT_CONTEXT = 65536
"""Default context for KTransformers, whose GPUs hold experts instead of a large cache."""


class DeployRefused(ValueError):
    """No layout fits; `lines` is the arithmetic that shows why."""

    def __init__(self, summary: str, lines: list[str]) -> None:
        super().__init__("\n".join([summary, *lines]))
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Layout:
    """tp x dp GPUs; `attention_dp` > 1: SGLang's data-parallel attention inside the TP group
    (each rank holds its own sequences' cache, attention split over tp / attention_dp)."""

    tp: int
    dp: int
    expert_parallel: bool
    attention_dp: int = 1

    @property
    def gpus(self) -> int:
        return self.tp * self.dp


@dataclass(slots=True)
class Plan:
    """What to launch, and the memory arithmetic behind it."""

    engine: Engine
    model: ModelShape
    model_source: str
    gpus: GpuSet
    layout: Layout
    context: int
    kv_dtype: str
    memory_fraction: float
    fit: GpuFit
    kv_per_token: int
    chunk_tokens: int = CHUNK_TOKENS
    gpu_experts: int | None = None
    """KTransformers: routed experts per layer kept on the GPUs."""
    cpu_expert_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def kv_tokens(self) -> int:
        """Tokens the latent cache holds on each data-parallel rank."""
        return self.fit.kv_bytes // self.kv_per_token


def make_plan(engine: Engine, model: ModelShape, source: str, gpus: GpuSet, *,
              context: int | None = None, kv_dtype: str = "bf16",
              memory_fraction: float | None = None, dp_attention: bool = False) -> Plan:
    """The first layout that fits (largest TP first), or `DeployRefused` with the arithmetic."""
    fraction = memory_fraction or engine.memory_fraction
    if not 0 < fraction <= 1:
        raise ValueError(f"memory fraction must be in (0, 1], got {fraction}")
    if context is not None and context > model.max_position_embeddings:
        raise ValueError(f"--context {context} exceeds the model's maximum "
                         f"{model.max_position_embeddings}")
    if dp_attention and engine.name != "sglang":
        raise ValueError("--dp-attention is SGLang's; vLLM's data parallelism already runs "
                         "attention per DP rank (use more GPUs than one TP group)")
    if engine.name == "ktransformers":
        return _kt_plan(engine, model, source, gpus, context or KT_CONTEXT, kv_dtype, fraction)
    layouts = (_dp_attention_layouts(model, gpus) if dp_attention
               else candidate_layouts(engine, model, gpus))
    contexts = [context] if context else [model.max_position_embeddings, *(
        c for c in FALLBACK_CONTEXTS if c < model.max_position_embeddings)]
    for ctx in contexts:
        for layout in layouts:
            plan = _try(engine, model, source, gpus, layout, ctx, kv_dtype, fraction)
            if plan.kv_tokens >= ctx:
                if ctx != model.max_position_embeddings and not context:
                    plan.notes.append(f"context lowered to {ctx} from the model's "
                                      f"{model.max_position_embeddings} to fit the latent cache")
                plan.notes += _multi_node_notes(engine, layout)
                return plan
    worst = _try(engine, model, source, gpus, layouts[0], contexts[-1], kv_dtype, fraction)
    raise _refusal(worst)


def _multi_node_notes(engine: Engine, layout: Layout) -> list[str]:
    """What a layout past one node needs besides the printed command."""
    nodes = -(-layout.gpus // GPUS_PER_NODE)
    if nodes == 1:
        return []
    if engine.name == "vllm":
        return [f"spans {nodes} nodes: start a Ray cluster over them (ray start --head, then "
                "ray start --address on the others) and run the command on the head node"]
    return [f"spans {nodes} nodes: run the command on each node with --nnodes {nodes} "
            "--node-rank R --dist-init-addr HEAD:PORT"]


def _dp_attention_layouts(model: ModelShape, gpus: GpuSet) -> list[Layout]:
    """SGLang `--tp N --dp N --enable-dp-attention`: one rank of attention per GPU."""
    if model.num_attention_heads % gpus.count:
        raise ValueError(f"{gpus.count} GPUs do not divide {model.num_attention_heads} heads")
    return [Layout(tp=gpus.count, dp=1, expert_parallel=False, attention_dp=gpus.count)]


def candidate_layouts(engine: Engine, model: ModelShape, gpus: GpuSet) -> list[Layout]:
    """TP sizes that divide the GPU count and the heads, largest first; the rest is DP."""
    heads = model.num_attention_heads
    out = []
    for tp in sorted((t for t in range(1, gpus.count + 1) if gpus.count % t == 0), reverse=True):
        if heads % tp:
            continue
        if engine.name == "sglang" and gpus.gpu.vendor == "amd" and (
                (heads // tp) % AMD_MLA_HEADS_MULTIPLE):
            continue
        dp = gpus.count // tp
        out.append(Layout(tp=tp, dp=dp, expert_parallel=dp > 1 and engine.name == "vllm"))
    if not out:
        raise ValueError(f"no tensor-parallel size divides both {gpus.count} GPUs and "
                         f"{heads} attention heads")
    return out


def _try(engine: Engine, model: ModelShape, source: str, gpus: GpuSet, layout: Layout,
         context: int, kv_dtype: str, fraction: float, chunk: int = CHUNK_TOKENS) -> Plan:
    w = weight_bytes(model)
    fit = GpuFit(usable=int(gpus.gpu.memory_bytes * fraction),
                 weights=per_gpu_weights(w, tp=layout.tp, dp=layout.dp,
                                         ep=layout.expert_parallel,
                                         attention_dp=layout.attention_dp),
                 activations=activation_bytes(model, chunk),
                 workspace=WORKSPACE_BYTES)
    return Plan(engine=engine, model=model, model_source=source, gpus=gpus, layout=layout,
                context=context, kv_dtype=kv_dtype, memory_fraction=fraction, fit=fit,
                kv_per_token=kv_bytes_per_token(model, kv_dtype), chunk_tokens=chunk)


def _kt_plan(engine: Engine, model: ModelShape, source: str, gpus: GpuSet, context: int,
             kv_dtype: str, fraction: float) -> Plan:
    """GPUs hold the dense weights, the cache and as many experts per layer as fit."""
    if model.weight_format != "int4":
        raise ValueError("the KTransformers recipe (AMXINT4) needs a native-INT4 checkpoint "
                         f"(K2-Thinking, K2.5, K2.6); {model.name} is {model.weight_format}")
    layout = Layout(tp=candidate_layouts(engine, model, gpus)[0].tp, dp=1, expert_parallel=False)
    w = weight_bytes(model)
    per_expert_all_layers = w.routed // model.n_routed_experts
    plan = _try(engine, model, source, gpus, layout, context, kv_dtype, fraction,
                KT_CHUNK_TOKENS)
    base = GpuFit(usable=plan.fit.usable, weights=math.ceil(w.rest / layout.tp),
                  activations=plan.fit.activations, workspace=plan.fit.workspace)
    room = (base.kv_bytes - context * plan.kv_per_token) * layout.tp
    plan.gpu_experts = min(model.n_routed_experts, max(0, room // per_expert_all_layers))
    on_gpu = plan.gpu_experts * per_expert_all_layers
    plan.fit = GpuFit(usable=base.usable, weights=base.weights + math.ceil(on_gpu / layout.tp),
                      activations=base.activations, workspace=base.workspace)
    plan.cpu_expert_bytes = w.routed - on_gpu
    if plan.kv_tokens < context:
        raise _refusal(plan)
    return plan


def _refusal(plan: Plan) -> DeployRefused:
    """The numbers for one GPU of the closest layout, and how many GPUs would be needed."""
    f, g, lay = plan.fit, plan.gpus.gpu, plan.layout
    kv_need = plan.context * plan.kv_per_token
    lines = [
        f"model weights: {_gb(weight_bytes(plan.model).total)} ({plan.model.weight_format})",
        f"per GPU at TP{lay.tp}" + (f" x DP{lay.dp}" if lay.dp > 1 else "") + ":",
        f"  usable   {g.memory_gb:g} GB x {plan.memory_fraction:.2f} = {_gb(f.usable)}",
        f"  weights  {_gb(f.weights)}",
        f"  activations {_gb(f.activations)} + workspace {_gb(f.workspace)}",
        f"  latent KV for one {plan.context}-token sequence: {plan.context} x "
        f"{plan.kv_per_token} B = {_gb(kv_need)}",
        f"  short by {_gb(f.weights + f.activations + f.workspace + kv_need - f.usable)}",
    ]
    per_gpu = f.usable - f.activations - f.workspace - kv_need
    total = weight_bytes(plan.model).total
    if plan.gpu_experts is not None:
        lines.append("routed experts can live in CPU RAM, but the other weights "
                     f"({_gb(weight_bytes(plan.model).rest)}, split by TP), the cache and "
                     "the workspace must fit the GPUs")
    elif per_gpu > 0 and math.ceil(total / per_gpu) > plan.gpus.count:
        lines.append(f"needs at least {math.ceil(total / per_gpu)} x {g.name} before rounding "
                     f"to a TP size ({_gb(total)} / {_gb(per_gpu)} free per GPU)")
    else:
        lines.append("this layout replicates weights; try another layout, a larger "
                     "--memory-fraction, --kv-dtype fp8 or a shorter --context")
    return DeployRefused(f"{plan.model.name} does not fit {plan.gpus} with "
                         f"{plan.engine.name}:", lines)


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB"
