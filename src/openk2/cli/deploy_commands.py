"""`openk2 deploy ENGINE`: the launch command for vLLM, SGLang or KTransformers that fits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from openk2.cli import app


@app.command("deploy")
def deploy(
    engine: Annotated[str, typer.Argument(help="vllm, sglang or ktransformers.")],
    model: Annotated[str, typer.Option("--model", help="Checkpoint directory with config.json, "
                                       "or moonshotai/Kimi-K2.6, Kimi-K2.5, Kimi-K2-Thinking, "
                                       "Kimi-K2-Instruct(-0905).")],
    gpus: Annotated[str, typer.Option("--gpus", help="COUNTxGPU, e.g. 8xH200, 4xGB200, "
                                      "8xMI300X, 8xL20.")],
    context: Annotated[int | None, typer.Option("--context", min=1, help="Context length "
                                                "(default: the model's, lowered to fit).")] = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="bf16 or fp8 latent cache.")] = "bf16",
    memory_fraction: Annotated[float | None, typer.Option(
        "--memory-fraction", help="Share of each GPU the engine may use (default: the "
        "engine's).")] = None,
    dp_attention: Annotated[bool, typer.Option("--dp-attention", help="SGLang: data-parallel "
                                               "attention, one rank per GPU (throughput; "
                                               "the cookbook's GB200 TP4 DP4).")] = False,
    host: Annotated[str, typer.Option(help="Address the server binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the server listens on.")] = 8000,
    served_model_name: Annotated[str | None, typer.Option(help="Model id it serves.")] = None,
    chat_template: Annotated[str | None, typer.Option(help="Chat template file (default: the "
                                                      "checkpoint's own).")] = None,
    run: Annotated[bool, typer.Option("--run", help="Execute the command.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="With --run: wait for "
                                         "/v1/models, then openk2 eval --suite preflight,"
                                         "tool-calls.")] = True,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the endpoint.")] = 1800.0,
    verify_n: Annotated[int, typer.Option(min=1, help="Tasks per verification suite.")] = 20,
    verify_out: Annotated[Path, typer.Option(help="Where the eval report goes.")] = Path(
        "deploy-verify"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Print (or --run) the engine's launch command, with parallel sizes that fit memory."""
    from openk2.deploy.commands import ServeOptions, build_argv
    from openk2.deploy.plan import DeployRefused

    try:
        plan = _plan(engine, model, gpus, context, kv_dtype, memory_fraction, dp_attention)
    except DeployRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    argv = build_argv(plan, ServeOptions(host=host, port=port, served_model_name=served_model_name,
                                         chat_template=chat_template))
    _show(plan, argv, as_json)
    if run:
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/v1"
        raise typer.Exit(_run(argv, base, verify, wait, verify_n, verify_out))


def _plan(engine: str, model: str, gpus: str, context: int | None, kv_dtype: str,
          memory_fraction: float | None, dp_attention: bool):  # noqa: ANN202 (lazy imports)
    from openk2.deploy.engines import get_engine
    from openk2.deploy.hardware import parse_gpus
    from openk2.deploy.memory import KV_DTYPE_BYTES
    from openk2.deploy.models import load_model
    from openk2.deploy.plan import DeployRefused, make_plan

    if kv_dtype not in KV_DTYPE_BYTES:
        raise typer.BadParameter(f"expected one of {', '.join(KV_DTYPE_BYTES)}",
                                 param_hint="--kv-dtype")
    try:
        shape = load_model(model)  # shape.name: the full hub id of a preset, else the path
        return make_plan(get_engine(engine), shape, shape.name, parse_gpus(gpus),
                         context=context, kv_dtype=kv_dtype, memory_fraction=memory_fraction,
                         dp_attention=dp_attention)
    except DeployRefused:
        raise
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _show(plan, argv: list[str], as_json: bool) -> None:  # noqa: ANN001
    import shlex

    from openk2.deploy.report import plan_json, plan_lines

    if as_json:
        typer.echo(json.dumps(plan_json(plan, argv)))
        return
    for line in plan_lines(plan):
        typer.echo(f"# {line}")
    typer.echo(shlex.join(argv))


def _run(argv: list[str], base_url: str, verify: bool, wait: float, n: int, out: Path) -> int:
    """Run the engine in the foreground; verify the endpoint once it answers."""
    from openk2.deploy.launch import LaunchError, start, wait_ready
    from openk2.deploy.launch import verify as run_verify

    try:
        proc = start(argv)
    except LaunchError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 127
    try:
        if verify:
            model_id = wait_ready(base_url, proc, wait)
            failed = run_verify(base_url, model_id, out, n)
            verdict = "FAILED: " + "; ".join(failed) if failed else "passed"
            typer.echo(f"verification {verdict}\nreport in {out}; use the endpoint with: "
                       f"openk2 swarm --base-url {base_url} --model {model_id} TASK", err=True)
        return proc.wait()
    except LaunchError as exc:
        typer.echo(f"error: {exc}", err=True)
        return proc.returncode if proc.returncode not in (None, 0) else 1
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
