"""report.html: one self-contained page (tables + figures as base64 PNG), readable offline.

Suites may contribute figures of their own (`figures(report) -> {title: png}` in the suite
module's `report_figures`); everything is inlined, no script or stylesheet is fetched.
"""

from __future__ import annotations

import base64
import html
import importlib
import json
from pathlib import Path
from typing import Any

from openk2.evals import plots

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
img{max-width:100%}pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:12px}"""

_COLUMNS = (("n", "n"), ("pass@1", "pass_at_1"), ("95% CI", "ci95"), ("pass^k", "pass_hat_k"),
            ("errors", "errors"), ("p50 s", "latency_p50_s"), ("p95 s", "latency_p95_s"),
            ("out tok/s", "output_tok_per_s"), ("tokens in/out", "tokens"),
            ("$ total", "cost_usd"), ("$ / success", "cost_per_success"))

SUITE_FIGURES = {"horizon": "openk2.evals.suites.horizon", "niah": "openk2.evals.suites.niah"}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "ci95":
        return f"[{value[0]:.2f}, {value[1]:.2f}]"
    if key == "tokens":
        return f"{value['prompt']}/{value['completion']}"
    if key.startswith("cost"):
        return f"{value:.5f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _table(report: dict[str, Any], suite: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in _COLUMNS)
    body = []
    for name, ep in report["endpoints"].items():
        row = ep["suites"][suite]
        cells = "".join(f"<td>{_cell(k, row.get(k))}</td>" for _, k in _COLUMNS)
        body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>endpoint</th>{head}</tr>{''.join(body)}</table>"


def _img(title: str, png: bytes | None) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode()
    return f'<h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" ' \
           f'src="data:image/png;base64,{data}">'


def _extras(report: dict[str, Any], suite: str) -> str:
    extra = {n: ep["suites"][suite].get("extra") for n, ep in report["endpoints"].items()}
    if not any(extra.values()):
        return ""
    text = html.escape(json.dumps(extra, indent=1, default=str))
    return f"<details><summary>{html.escape(suite)} details</summary><pre>{text}</pre></details>"


def suite_figures(report: dict[str, Any], suite: str) -> dict[str, bytes]:
    """A suite's own figures, if its module defines `report_figures`."""
    module = SUITE_FIGURES.get(suite)
    if module is None:
        return {}
    return importlib.import_module(module).report_figures(report)


def render(report: dict[str, Any]) -> str:
    """The page as a string."""
    cfg = report["config"]
    parts = [f"<h1>openk2 eval</h1><p>{html.escape(report['created'])} · suites "
             f"{html.escape(', '.join(cfg['suites']))} · n={cfg['n']} · repeats="
             f"{cfg['repeats']} · seed={cfg['seed']}</p>"]
    endpoints = "".join(f"<li>{html.escape(n)}: {html.escape(e['url'])} model "
                        f"{html.escape(e['model'])}, {e['calls_sent']} calls sent</li>"
                        for n, e in report["endpoints"].items())
    parts.append(f"<ul>{endpoints}</ul>")
    parts.append(_img("Pass rate per suite", plots.pass_rates(report)))
    parts.append(_img("Accuracy vs cost", plots.cost_vs_accuracy(report)))
    for suite in cfg["suites"]:
        parts.append(f"<h2>{html.escape(suite)}</h2>{_table(report, suite)}")
        for title, png in suite_figures(report, suite).items():
            parts.append(_img(title, png))
        parts.append(_extras(report, suite))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>openk2 eval</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")


def write_html(report: dict[str, Any], path: Path) -> None:
    """Write report.html."""
    path.write_text(render(report))
