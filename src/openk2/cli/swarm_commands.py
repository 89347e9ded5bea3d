"""`openk2 swarm`: run an agent swarm against any OpenAI-compatible server, or resume one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from openk2.cli import app

RUNS = Path("runs")


@app.command("swarm")
def swarm(
    task: str = typer.Argument("", help="What the orchestrator should do."),
    base_url: str = typer.Option("", "--base-url", envvar="OPENK2_BASE_URL",
                                 help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"),
    model: str = typer.Option("", "--model", envvar="OPENK2_MODEL", help="Model id."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENK2_API_KEY",
                                       help="Bearer token (never stored)."),
    max_agents: int = typer.Option(300, "--max-agents", min=0, help="Sub-agents per run."),
    max_steps: int = typer.Option(4000, "--max-steps", min=1, help="LLM steps per run."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="Tokens per run."),
    wall_clock: float | None = typer.Option(None, "--wall-clock", help="Seconds per session."),
    agent_max_steps: int = typer.Option(100, "--agent-max-steps", min=1,
                                        help="Steps per sub-agent."),
    max_concurrency: int = typer.Option(300, "--max-concurrency", min=1,
                                        help="Model calls in flight."),
    max_rps: float | None = typer.Option(None, "--max-rps", min=0.01, help="Requests per "
                                         "second, never exceeded (default: learned from 429s)."),
    temperature: float | None = typer.Option(None, "--temperature"),
    price: str | None = typer.Option(None, "--price", help="Dollars per million tokens for "
                                     "cost accounting: IN,OUT[,CACHED_IN]."),
    agents_file: Annotated[Path | None, typer.Option(
        "--agents", exists=True, dir_okay=False, help="YAML list of predefined sub-agent types.",
    )] = None,
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", exists=True, help="Give sub-agents calculator, read_file, kv_get and "
        "kv_set over this directory (kv.json seeds the store) or world JSON file.",
    )] = None,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where runs are kept.")] = RUNS,
    run_id: str | None = typer.Option(None, "--run-id", help="Id for a new run."),
    resume: str | None = typer.Option(None, "--resume", help="Continue run RUN_ID."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                         help="Live view on stderr (default: when a terminal)."),
    backend: str | None = typer.Option(None, "--backend", help="Where sub-agents run: local "
                                       "(default) or ray (one Ray task per sub-agent "
                                       "invocation; a resume keeps the run's backend)."),
    ray_address: str | None = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                           help="Ray cluster to join (default: start a "
                                           "local instance)."),
    ray_cpus: int | None = typer.Option(None, "--ray-cpus", min=1, help="CPUs of a local "
                                        "Ray instance (default: all)."),
) -> None:
    """Run an orchestrator that fans work out to up to 300 sub-agents; durable and resumable."""
    import asyncio

    from openk2.agent.swarm.launcher import LaunchOptions, launch, options_for_resume
    from openk2.agent.swarm.spec import load_specs

    show = sys.stderr.isatty() if progress is None else progress
    if resume:
        try:
            opts = options_for_resume(run_dir, resume, api_key)
        except (FileNotFoundError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--resume") from exc
        opts.progress = show
        opts.tools = _workspace_tools(workspace)
        opts.backend = _backend_name(backend or opts.backend)
    else:
        _require(task, base_url, model)
        opts = LaunchOptions(
            task=task, base_url=base_url, model=model, api_key=api_key, run_dir=run_dir,
            run_id=run_id, max_agents=max_agents, max_steps=max_steps, max_tokens=max_tokens,
            wall_clock_s=wall_clock, agent_max_steps=agent_max_steps,
            max_concurrency=max_concurrency, max_rps=max_rps, temperature=temperature,
            progress=show,
            specs=load_specs(agents_file) if agents_file else [], price=_price(price),
            tools=_workspace_tools(workspace), backend=_backend_name(backend or "local"),
        )
    remote = _remote_backend(opts.backend, ray_address, ray_cpus)
    try:
        outcome = asyncio.run(launch(opts, resume=bool(resume), backend=remote))
    except (FileExistsError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    except KeyboardInterrupt:
        typer.echo(f"interrupted; continue with: openk2 swarm --resume {opts.run_id} "
                   f"--run-dir {run_dir}", err=True)
        raise typer.Exit(130) from None
    finally:
        _stop_backend(remote)
    _report(outcome, as_json, opts.run_dir)


BACKENDS = ("local", "ray")


def _backend_name(name: str) -> str:
    if name not in BACKENDS:
        raise typer.BadParameter(f"expected one of {', '.join(BACKENDS)}, got {name!r}",
                                 param_hint="--backend")
    return name


def _remote_backend(name: str, address: str | None, cpus: int | None) -> Any:
    """A `RayBackend` for "ray" (joining `address`, else a local instance), None for local."""
    if name == "local":
        return None
    try:
        from openk2.agent.swarm.ray_backend import RayBackend
    except ImportError as exc:
        raise typer.BadParameter("needs the ray extra: pip install 'openk2[ray]'",
                                 param_hint="--backend") from exc
    try:
        return RayBackend(address=address, num_cpus=None if address else cpus)
    except ImportError as exc:
        raise typer.BadParameter(f"needs ray installed ({exc})", param_hint="--backend") from exc
    except ConnectionError as exc:
        raise typer.BadParameter(f"cannot reach Ray at {address}: {exc}",
                                 param_hint="--ray-address") from exc


def _stop_backend(remote: Any) -> None:
    """Disconnect from Ray (a local instance this process started stops with it)."""
    if remote is not None:
        import ray

        ray.shutdown()


def _workspace_tools(path: Path | None) -> Any:
    """The four direct tools over a workspace (`cli/workspace.py`), or None."""
    if path is None:
        return None
    from openk2.cli.workspace import workspace_tools

    try:
        return workspace_tools(path)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--workspace") from exc


def _price(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if not 2 <= len(parts) <= 3 or min(parts) < 0:
        raise typer.BadParameter("expected IN,OUT or IN,OUT,CACHED_IN (dollars per million "
                                 "tokens, >= 0)", param_hint="--price")
    return parts


def _require(task: str, base_url: str, model: str) -> None:
    missing = [n for n, v in (("TASK", task), ("--base-url", base_url), ("--model", model))
               if not v.strip()]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (or use --resume RUN_ID)")


def _report(outcome: object, as_json: bool, run_dir: Path) -> None:
    from openk2.agent.swarm.runtime import SwarmOutcome

    assert isinstance(outcome, SwarmOutcome)
    if as_json:
        summary = outcome.to_json() | {"run_dir": str(run_dir / outcome.run_id)}
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(outcome.answer)
        acc = outcome.accounting
        typer.echo(
            f"[run {outcome.run_id}: {outcome.state}; {len(outcome.agents)} agents, "
            f"{acc.total_steps} steps, {acc.critical_steps} critical steps, "
            f"{acc.usage.total_tokens} tokens]", err=True)
    if outcome.state != "completed":
        typer.echo(f"run {outcome.run_id} {outcome.state}: {outcome.error}; resume with "
                   f"openk2 swarm --resume {outcome.run_id} --run-dir {run_dir}", err=True)
        raise typer.Exit(1)
