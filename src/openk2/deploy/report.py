"""The plan's arithmetic as comment lines or JSON, so every figure can be checked."""

from __future__ import annotations

from typing import Any

from openk2.deploy.hardware import GB
from openk2.deploy.memory import weight_bytes
from openk2.deploy.plan import Plan


def plan_lines(plan: Plan) -> list[str]:
    """What was chosen and why it fits, one fact a line."""
    f, lay, w = plan.fit, plan.layout, weight_bytes(plan.model)
    lines = [
        f"{plan.model.name} ({plan.model.weight_format}) on {plan.gpus} with {plan.engine.name}",
        f"weights {w.total / GB:.1f} GB (routed experts {w.routed / GB:.1f} GB)",
        f"layout TP{lay.tp} x DP{lay.dp}" + (" + expert parallel" if lay.expert_parallel else "")
        + (f" + DP attention x{lay.attention_dp}" if lay.attention_dp > 1 else ""),
        f"per GPU: usable {f.usable / GB:.1f} GB = weights {f.weights / GB:.1f} + activations "
        f"{f.activations / GB:.1f} + workspace {f.workspace / GB:.1f} + KV {f.kv_bytes / GB:.1f}",
        f"latent KV {plan.kv_per_token} B/token ({plan.kv_dtype}) -> {plan.kv_tokens} tokens "
        f"per {'attention-DP rank' if lay.attention_dp > 1 else 'replica'} (x"
        f"{lay.attention_dp * lay.dp}); context {plan.context}",
    ]
    if plan.gpu_experts is not None:
        lines.append(f"{plan.gpu_experts} of {plan.model.n_routed_experts} experts per layer on "
                     f"GPU; CPU RAM holds {plan.cpu_expert_bytes / GB:.1f} GB of experts")
    return lines + plan.notes


def plan_json(plan: Plan, argv: list[str]) -> dict[str, Any]:
    """The plan for scripts: layout, memory figures in bytes, and the argv."""
    f, lay = plan.fit, plan.layout
    return {
        "engine": plan.engine.name, "model": plan.model.name, "gpus": str(plan.gpus),
        "weight_format": plan.model.weight_format,
        "weight_bytes": weight_bytes(plan.model).total,
        "tp": lay.tp, "dp": lay.dp, "expert_parallel": lay.expert_parallel,
        "attention_dp": lay.attention_dp,
        "context": plan.context, "kv_dtype": plan.kv_dtype,
        "kv_bytes_per_token": plan.kv_per_token, "kv_tokens": plan.kv_tokens,
        "per_gpu": {"usable": f.usable, "weights": f.weights, "activations": f.activations,
                    "workspace": f.workspace, "kv": f.kv_bytes},
        "gpu_experts": plan.gpu_experts, "notes": plan.notes, "argv": argv,
    }
