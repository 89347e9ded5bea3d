"""matplotlib figures of a report, returned as PNG bytes (the HTML embeds them as base64).

The Agg backend is forced so a headless run never looks for a display.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def pass_rates(report: dict[str, Any]) -> bytes:
    """Grouped bars of pass@1 per suite and endpoint, with the Wilson 95% interval."""
    names = list(report["endpoints"])
    suites = list(report["config"]["suites"])
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(suites) * max(len(names), 1)), 3.4))
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        rows = [report["endpoints"][name]["suites"][s] for s in suites]
        values = [r["pass_at_1"] or 0.0 for r in rows]
        lows = [v - r["ci95"][0] for v, r in zip(values, rows, strict=True)]
        highs = [r["ci95"][1] - v for v, r in zip(values, rows, strict=True)]
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(suites))]
        ax.bar(xs, values, width, yerr=[lows, highs], capsize=3, label=name)
    ax.set_xticks(range(len(suites)), suites)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("pass@1 (95% CI)")
    ax.legend(fontsize=8)
    ax.set_title("Pass rate per suite")
    return _png(fig)


def cost_vs_accuracy(report: dict[str, Any]) -> bytes | None:
    """Cost per successful task against pass@1, one point per (endpoint, suite)."""
    points = [(name, s, row) for name, ep in report["endpoints"].items()
              for s, row in ep["suites"].items() if row.get("cost_per_success")]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for name, suite, row in points:
        ax.scatter(row["cost_per_success"], row["pass_at_1"], label=f"{name} / {suite}")
    ax.set_xscale("log")
    ax.set_xlabel("$ per successful task")
    ax.set_ylabel("pass@1")
    ax.legend(fontsize=7)
    ax.set_title("Accuracy vs cost")
    return _png(fig)


def crossover_plot(report: dict[str, Any], apis: list[Any], node: Any, mix: Any) -> bytes:
    """Two panels. Left: monthly cost vs monthly token volume, one line per API, the
    self-host staircase at the node's utilisation (and, with a measured throughput, at each
    utilisation band), each crossover marked. Right: the output tok/s a node must sustain to
    break even against each API, against utilisation, bands marked; with a measured
    throughput its crossing is the break-even utilisation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.0))
    _cost_panel(left, report, apis, node, mix)
    _utilization_panel(right, report, apis, node)
    fig.tight_layout()
    return _png(fig)


def _cost_panel(ax: Any, report: dict[str, Any], apis: list[Any], node: Any, mix: Any) -> None:
    import dataclasses

    import numpy as np

    rows = report["apis"]
    top = max(r.get("crossover_requests_month") or r["break_even_requests_month"]
              for r in rows) * 2.5
    q = np.linspace(0.0, top, 600)
    tokens = q * mix.tokens / 1e9
    if node.output_tok_s is not None:
        for band in report.get("utilization_bands") or []:
            at = dataclasses.replace(node, utilization=band["utilization"])
            ax.plot(tokens, [at.monthly(v, mix) / 1e3 for v in q], color="grey", lw=0.8,
                    alpha=0.35 + 0.6 * band["utilization"])
            ax.annotate(f"u={band['utilization']:.0%}", (tokens[-1], at.monthly(top, mix) / 1e3),
                        fontsize=6, color="grey", ha="right", va="bottom")
    ax.plot(tokens, [node.monthly(v, mix) / 1e3 for v in q], color="black", lw=2,
            label=f"self-host {node.gpus} GPUs x ${node.gpu_hour}/h, u={node.utilization}")
    for api, row in zip(apis, rows, strict=True):
        line = ax.plot(tokens, api.per_request(mix) * q / 1e3, label=api.name)[0]
        cross = row.get("crossover_requests_month", row["break_even_requests_month"])
        if cross is not None:
            x = cross * mix.tokens / 1e9
            ax.plot([x], [api.per_request(mix) * cross / 1e3], "o", color=line.get_color())
            ax.annotate(f"{x:.1f}B", (x, api.per_request(mix) * cross / 1e3), fontsize=7,
                        textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("tokens per month (billions, in + out)")
    ax.set_ylabel("$k per month")
    ax.set_ylim(0, node.monthly(top, mix) / 1e3 * 2.5)
    ax.set_title(f"Self-hosting vs APIs ({mix.input_tokens:.0f} in / "
                 f"{mix.output_tokens:.0f} out, {mix.cache_hit:.0%} cached)", fontsize=9)
    ax.legend(fontsize=7)


def _utilization_panel(ax: Any, report: dict[str, Any], apis: list[Any], node: Any) -> None:
    import numpy as np

    u = np.linspace(0.05, 1.0, 200)
    bands = report.get("utilization_bands") or []
    for api, row in zip(apis, report["apis"], strict=True):
        at_full = row["required_output_tok_s"] * node.utilization  # tok/s needed at u = 1
        line = ax.plot(u * 100, at_full / u, label=api.name)[0]
        levels = [b["utilization"] for b in bands]
        ax.plot([x * 100 for x in levels], [at_full / x for x in levels], "o", ms=3,
                color=line.get_color())
        u_star = row.get("break_even_utilization")
        if u_star is not None and u_star <= 1:
            ax.annotate(f"{u_star:.0%}", (u_star * 100, node.output_tok_s), fontsize=7,
                        color=line.get_color(), textcoords="offset points", xytext=(2, 4))
    for b in bands:
        ax.axvline(b["utilization"] * 100, color="grey", lw=0.5, ls=":")
    if node.output_tok_s is not None:
        ax.axhline(node.output_tok_s, color="black", lw=1.5,
                   label=f"measured {node.output_tok_s:.0f} tok/s")
    ax.set_yscale("log")
    ax.set_xlabel("average utilisation (%)")
    ax.set_ylabel("output tok/s needed to break even")
    ax.set_title("Break-even throughput by utilisation", fontsize=9)
    ax.legend(fontsize=7)


def horizon_figures(report: dict[str, Any]) -> dict[str, bytes]:
    """Success vs N (log axis) with each endpoint's logistic fit and 50%/80% horizons, and
    accuracy by step index."""
    import numpy as np

    extras = {n: ep["suites"]["horizon"]["extra"] for n, ep in report["endpoints"].items()
              if ep["suites"].get("horizon", {}).get("extra")}
    if not extras:
        return {}
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, ex in extras.items():
        steps = [int(k) for k in ex["success_by_steps"]]
        line = ax.plot(steps, list(ex["success_by_steps"].values()), "o", label=name)[0]
        grid = np.geomspace(1, max(steps) * 2, 200)
        a, b = ex["fit"]["intercept"], ex["fit"]["slope_per_log2_step"]
        ax.plot(grid, 1 / (1 + np.exp(-(a + b * np.log2(grid)))), color=line.get_color())
        for level, key in ((0.5, "horizon_50"), (0.8, "horizon_80")):
            if ex.get(key):
                ax.axvline(ex[key], color=line.get_color(), ls=":" if level == 0.8 else "--",
                           lw=1)
                ax.annotate(f"H{int(level * 100)}={ex[key]:.1f}", (ex[key], level), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("steps N (dependent lookups)")
    ax.set_ylabel("task success")
    ax.set_title("Success vs horizon length (logistic fit on log2 N)")
    ax.legend(fontsize=8)
    out = {"Horizon: success vs steps": _png(fig)}
    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    for name, ex in extras.items():
        acc = ex["accuracy_by_step_index"]
        ax.plot(range(1, len(acc) + 1), acc, label=name)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("step index")
    ax.set_ylabel("step correct")
    ax.set_title("Accuracy by step index")
    ax.legend(fontsize=8)
    out["Horizon: accuracy by step index"] = _png(fig)
    return out


def niah_figures(report: dict[str, Any]) -> dict[str, bytes]:
    """One length x depth heatmap of retrieval accuracy per endpoint."""
    out = {}
    for name, ep in report["endpoints"].items():
        ex = ep["suites"].get("niah", {}).get("extra") or {}
        grid = ex.get("grid")
        if not grid:
            continue
        lengths, depths = ex["lengths"], ex["depths"]
        values = [[grid.get(f"{n}:{d}", float("nan")) for d in depths] for n in lengths]
        fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(depths), 0.9 + 0.5 * len(lengths)))
        im = ax.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(depths)), [f"{d:.0%}" for d in depths])
        ax.set_yticks(range(len(lengths)), [str(n) for n in lengths])
        ax.set_xlabel("needle depth")
        ax.set_ylabel("haystack words")
        ax.set_title(f"NIAH retrieval: {name}")
        fig.colorbar(im, ax=ax)
        out[f"NIAH: {name}"] = _png(fig)
    return out
