"""`openk2 eval` (suites against endpoints, side by side), `openk2 eval compare`, `openk2 cost`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from openk2.cli import app

eval_app = typer.Typer(help="Evaluate OpenAI-compatible endpoints side by side.",
                       invoke_without_command=True, no_args_is_help=False)
app.add_typer(eval_app, name="eval")


@eval_app.callback()
def eval_run(
    ctx: typer.Context,
    endpoint: Annotated[list[str] | None, typer.Option(
        "--endpoint", help="NAME=URL[,model=M,key=ENV,price_in=$/1M,price_out=$/1M,"
        "price_cached=$/1M,concurrency=C] (repeatable).")] = None,
    suite: Annotated[list[str] | None, typer.Option(
        "--suite", help="Suite to run (repeatable); default: all.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Tasks per suite.")] = 20,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Tries per task (pass^k).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the generated suite data.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.json, report.html, "
                                      "samples.jsonl (and the cache).")] = Path("eval-out"),
    cache: Annotated[Path | None, typer.Option(
        help="SQLite answer cache; default OUT/cache.sqlite. Re-running resumes.")] = None,
    attempts: Annotated[int, typer.Option(min=1, help="Tries per call before it counts as an "
                                          "endpoint error.")] = 3,
    retry_delay: Annotated[float, typer.Option(min=0.0, help="First backoff in seconds.")] = 0.5,
    timeout: Annotated[float, typer.Option(min=1.0, help="Read timeout per call (s).")] = 600.0,
    horizon_steps: Annotated[str | None, typer.Option(
        help="Comma-separated step counts of the horizon suite (default 1,2,4,...,64).")] = None,
    niah_lengths: Annotated[str | None, typer.Option(
        help="Comma-separated haystack lengths in words (default 128,512,1024).")] = None,
    niah_depths: Annotated[str | None, typer.Option(
        help="Comma-separated needle depths in [0, 1] (default 0,0.25,0.5,0.75,1).")] = None,
    preflight_checks: Annotated[str | None, typer.Option(
        help="Comma-separated preflight checks (default: all).")] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Write report.html.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report on stdout.")] = False,
) -> None:
    """Run suites against every --endpoint; write report.json, report.html, samples.jsonl."""
    if ctx.invoked_subcommand is not None:
        return
    from openk2.evals.client import RetryConfig
    from openk2.evals.endpoints import parse_endpoint
    from openk2.evals.runner import RunConfig, run, stderr_progress
    from openk2.evals.suites import SUITE_NAMES, get_suite

    try:
        names = list(suite or SUITE_NAMES)
        options = _suite_options(horizon_steps, niah_lengths, niah_depths, preflight_checks)
        for name in names:
            get_suite(name, **options.get(name, {}))
        cfg = RunConfig(
            endpoints=[parse_endpoint(e) for e in endpoint or []], suites=names, out_dir=out,
            n=n, repeats=repeats, seed=seed, cache_path=cache, html=html, suite_options=options,
            retry=RetryConfig(attempts=attempts, base_delay_s=retry_delay, timeout_s=timeout),
        )  # fmt: skip
        report = run(cfg, stderr_progress)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(_brief(report) + f"\nwrote {out / 'report.json'}")


def _suite_options(horizon_steps: str | None, niah_lengths: str | None,
                   niah_depths: str | None, preflight_checks: str | None) -> dict[str, dict]:
    """The grid options of the suites that have them (bad numbers are ValueErrors)."""
    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split(","))

    options: dict[str, dict] = {"horizon": {}, "niah": {}, "preflight": {}}
    if horizon_steps:
        options["horizon"]["steps"] = ints(horizon_steps)
    if niah_lengths:
        options["niah"]["lengths"] = ints(niah_lengths)
    if niah_depths:
        options["niah"]["depths"] = tuple(float(v) for v in niah_depths.split(","))
    if preflight_checks:
        options["preflight"]["checks"] = tuple(preflight_checks.split(","))
    return options


def _brief(report: dict) -> str:
    lines = []
    for name, ep in report["endpoints"].items():
        for suite, row in ep["suites"].items():
            lo, hi = row["ci95"]
            cps = row["cost_per_success"]
            lines.append(f"{name:>12} {suite:<11} pass@1 {row['pass_at_1']:.3f} "
                         f"[{lo:.2f}, {hi:.2f}] n={row['n']}"
                         + (f" $/success {cps:.5f}" if cps else ""))
    return "\n".join(lines)


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="First report.json.")],
    b: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Second report.json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Diff two runs: pass@1 change per (endpoint, suite) with a 95% interval."""
    from openk2.evals.compare import compare_reports, format_comparison

    try:
        diff = compare_reports(json.loads(a.read_text()), json.loads(b.read_text()))
    except (ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(diff, indent=2) if as_json else format_comparison(diff))


@app.command("cost")
def cost(
    gpus: Annotated[str, typer.Option(help="The node, COUNTxTYPE, e.g. 8xH200.")] = "8xH200",
    gpu_hour: Annotated[float | None, typer.Option(
        help="$ per GPU-hour (default: the low end of the price file's range for TYPE).")] = None,
    throughput: Annotated[str | None, typer.Option(
        help="Output tok/s the node sustains at your latency SLO: a number (e.g. from "
        "benchmarks/serve.py) or an `openk2 eval` report.json[:ENDPOINT].")] = None,
    utilization: Annotated[float, typer.Option(min=0.01, max=1.0,
                                               help="Average share of capacity used.")] = 1.0,
    api: Annotated[list[str] | None, typer.Option(
        "--api", help="API from the price file (repeatable); default: every complete row.")] = None,
    input_tokens: Annotated[float, typer.Option("--input", help="Prompt tokens/request.")] = 8000,
    output_tokens: Annotated[float, typer.Option("--output", help="Output tokens/request.")] = 1000,
    cache_hit: Annotated[float, typer.Option(help="Share of prompt tokens cached.")] = 0.5,
    ops_month: Annotated[float, typer.Option(help="Fixed $ per month on top.")] = 0.0,
    volume: Annotated[float | None, typer.Option(
        help="Requests per month to price (default: one node's capacity).")] = None,
    bands: Annotated[str, typer.Option(
        help="Utilisation levels to repeat the break-even at, comma-separated.")
    ] = "0.2,0.4,0.6,0.8",
    plot: Annotated[Path, typer.Option(help="Where to write the crossover PNG.")] = Path(
        "cost.png"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Monthly cost of self-hosting vs APIs at a token mix; crossover volume; throughput needed."""
    from openk2.evals import cost as costs
    from openk2.evals.plots import crossover_plot

    try:
        prices = costs.load_prices()
        count, gpu_type = _parse_gpus(gpus)
        hourly = gpu_hour if gpu_hour is not None else _gpu_price(prices, gpu_type)
        names = api or [n for n, r in prices["apis"].items() if r.get("out") is not None]
        apis = [costs.api_price(n, prices) for n in names]
        mix = costs.Mix(input_tokens=input_tokens, output_tokens=output_tokens,
                        cache_hit=cache_hit)
        node = costs.Node(gpus=count, gpu_hour=hourly, ops_month=ops_month,
                          output_tok_s=_throughput(throughput), utilization=utilization)
        report = costs.cost_report(apis, node, mix, volume, _parse_bands(bands))
    except (ValueError, OSError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    report["node"]["type"] = gpu_type
    report["prices_recorded"] = prices["recorded"]
    plot.write_bytes(crossover_plot(report, apis, node, mix))
    report["plot"] = str(plot)
    typer.echo(json.dumps(report, indent=2) if as_json else _cost_text(report))


def _parse_bands(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        levels = ()
    if not levels or not all(0 < u <= 1 for u in levels):
        raise ValueError(f"--bands must be utilisations in (0, 1], e.g. 0.2,0.4; got {text!r}")
    return levels


def _parse_gpus(text: str) -> tuple[int, str]:
    count, sep, kind = text.partition("x")
    if not sep or not count.isdigit() or not kind:
        raise ValueError(f"--gpus must look like 8xH200, got {text!r}")
    return int(count), kind.upper()


def _gpu_price(prices: dict, kind: str) -> float:
    row = prices["gpus"].get(kind)
    if row is None:
        raise ValueError(f"no rental price for {kind}; pass --gpu-hour")
    return float(row["low"])


def _throughput(value: str | None) -> float | None:
    """A number, or the aggregate output tok/s of an eval report (one endpoint or :NAME)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    path, _, name = value.partition(":")
    endpoints = json.loads(Path(path).read_text())["endpoints"]
    if not name:
        if len(endpoints) != 1:
            raise ValueError(f"{path} has several endpoints; say which: {path}:NAME")
        name = next(iter(endpoints))
    rate = endpoints[name].get("aggregate_output_tok_per_s")
    if not rate:
        raise ValueError(f"{path}: endpoint {name!r} has no measured throughput")
    return float(rate)


def _band_text(band: dict) -> str:
    """One utilisation level: tok/s needed per API, and whether the measured rate gets there."""
    needs = ", ".join(f"{name} {row['required_output_tok_s']:,.0f}"
                      + ("" if row.get("feasible_on_one_node") is None else
                         " reachable" if row["feasible_on_one_node"] else " out of reach")
                      for name, row in band["apis"].items())
    return f"  at u={band['utilization']:.0%}: out tok/s to break even: {needs}"


def _cost_text(report: dict) -> str:
    node = report["node"]
    lines = [f"node: {node['gpus']}x{node['type']} at ${node['gpu_hour']}/GPU-h = "
             f"${node['usd_per_hour'] * 730:,.0f}/month"
             + (f", {node['output_tok_s']:.0f} out tok/s at u={node['utilization']}"
                if node["output_tok_s"] else "")]
    for r in report["apis"]:
        lines.append(f"{r['api']:>18}: ${r['usd_per_request']:.5f}/request, break-even "
                     f"{r['break_even_requests_month'] / 1e6:.2f}M req/month "
                     f"({r['break_even_tokens_month'] / 1e9:.1f}B tokens), needs "
                     f"{r['required_output_tok_s']:.0f} out tok/s [{r['tag']}, {r['as_of']}]"
                     + (f", break-even utilisation {r['break_even_utilization']:.0%}"
                        if r.get("break_even_utilization") is not None else ""))
    lines += [_band_text(band) for band in report["utilization_bands"]]
    lines.append(f"plot: {report['plot']}")
    return "\n".join(lines)


@eval_app.command("swarm-horizon")
def eval_swarm_horizon(
    base_url: Annotated[str, typer.Option("--base-url", envvar="OPENK2_BASE_URL",
                                          help="OpenAI-compatible endpoint the swarm uses.")] = "",
    model: Annotated[str, typer.Option("--model", envvar="OPENK2_MODEL", help="Model id.")] = "",
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="OPENK2_API_KEY",
                                                help="Bearer token (never stored).")] = None,
    name: Annotated[str, typer.Option(help="Endpoint name in the report.")] = "swarm",
    steps: Annotated[str, typer.Option(help="Comma-separated chain lengths (agent steps).")] = (
        "1,2,4,8,16"),
    n: Annotated[int, typer.Option("--n", min=1, help="Chains (swarm runs), cycling over "
                                   "--steps.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the chains.")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="Swarm runs at once.")] = 4,
    out: Annotated[Path, typer.Option("--out", help="report.json, samples.jsonl, runs/ and "
                                      "the horizon PNGs; a re-run skips finished chains.")] = Path(
        "swarm-horizon-out"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report on stdout.")] = False,
) -> None:
    """The horizon suite through `openk2 swarm`: each lookup is a sub-agent's kv_get call;
    success vs steps, the logistic fit and the 50%/80% horizons in agent steps."""
    import asyncio

    from openk2.evals.plots import horizon_figures
    from openk2.evals.swarm_horizon import SwarmHorizonConfig, run_swarm_horizon

    if not base_url or not model:
        typer.echo("error: --base-url and --model are required (or OPENK2_BASE_URL, "
                   "OPENK2_MODEL)", err=True)
        raise typer.Exit(code=2)
    try:
        grid = tuple(int(x) for x in steps.split(","))
        if min(grid) < 1:
            raise ValueError("steps must be >= 1")
    except ValueError as exc:
        typer.echo(f"error: --steps: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    cfg = SwarmHorizonConfig(name=name, base_url=base_url, model=model, api_key=api_key, n=n,
                             seed=seed, steps=grid, concurrency=concurrency, out_dir=out)
    report = asyncio.run(run_swarm_horizon(cfg))
    for title, png in horizon_figures(report).items():
        (out / (title.split(": ")[1].replace(" ", "_") + ".png")).write_bytes(png)
    typer.echo(json.dumps(report, indent=2) if as_json else _swarm_horizon_text(report))


def _swarm_horizon_text(report: dict) -> str:
    lines = []
    for name, ep in report["endpoints"].items():
        row = ep["suites"]["horizon"]
        ex = row["extra"]
        h50, h80 = ex.get("horizon_50"), ex.get("horizon_80")
        lines.append(f"{name}: pass@1 {row['pass_at_1']:.3f} over {row['n']} chains, "
                     f"success by steps {ex.get('success_by_steps')}, "
                     f"H50 {'-' if h50 is None else f'{h50:.1f}'}, "
                     f"H80 {'-' if h80 is None else f'{h80:.1f}'} agent steps"
                     + (f" ({'; '.join(ex['horizon_notes'])})" if ex.get("horizon_notes") else ""))
    return "\n".join(lines)
