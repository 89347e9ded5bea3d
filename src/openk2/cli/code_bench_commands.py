"""`openk2 code bench`: score a model on the shipped micro-repos (Tier B, see `openk2.code.bench`).

Each task runs through the same session path as `openk2 code -p` (in process), against any
OpenAI-compatible endpoint, `--model embedded` (a local `openk2 serve` child) or `--oracle`
(the scripted known fixes, which proves the harness itself).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from openk2.cli.code_commands import code_app, endpoint


@code_app.command("bench")
def bench_command(
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id; 'embedded' starts the shipped "
                                              "model locally.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Bearer key for the endpoint.")] = None,
    tasks: Annotated[str, typer.Option(help="Glob of task names (comma-separated).")] = "*",
    repeats: Annotated[int, typer.Option(min=1, help="Runs per task (pass^k over them).")] = 1,
    jobs: Annotated[int, typer.Option(min=1, help="Tasks run at once.")] = 4,
    out: Annotated[Path | None, typer.Option(help="Write DIR/report.json.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    mode: Annotated[str, typer.Option(help="Approval mode: manual, auto or yolo (default: each "
                                          "workspace is a throwaway copy, shell "
                                          "commands are sandboxed).")] = "yolo",
    max_steps: Annotated[int, typer.Option(min=1, help="LLM calls per task.")] = 30,
    no_sandbox: Annotated[bool, typer.Option("--no-sandbox", help="Run shell commands without "
                                             "the OS sandbox.")] = False,
    oracle: Annotated[bool, typer.Option("--oracle", help="Apply each task's known fix with a "
                                         "scripted model (checks the harness).")] = False,
    list_tasks: Annotated[bool, typer.Option("--list", help="List the tasks and exit.")] = False,
) -> None:
    """Run the micro-repo bench: pass@1, steps, tokens, wall time and tests edited."""
    import asyncio

    from openk2.code.bench.tasks import load_tasks
    from openk2.code.config import CodeSettings, ConfigError

    try:
        chosen = load_tasks(tasks)
        if list_tasks:
            for t in chosen:
                typer.echo(f"{t.name:<22} {t.prompt}")
            return
        settings = CodeSettings(base_url=base_url, model="oracle" if oracle else model,
                                api_key=api_key, mode=mode, max_steps=max_steps)  # type: ignore[arg-type]
        report = asyncio.run(_bench(chosen, settings, oracle=oracle, sandbox=not no_sandbox,
                                    repeats=repeats, jobs=jobs))  # fmt: skip
    except (ConfigError, ValueError) as exc:
        typer.echo(f"openk2 code bench: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    _print(report, out, as_json)


async def _bench(chosen: list[Any], settings: Any, *, oracle: bool, sandbox: bool,
                 repeats: int, jobs: int) -> dict[str, Any]:
    from openk2.code.bench.oracle import oracle_provider
    from openk2.code.bench.report import summarize
    from openk2.code.bench.run import guarded, run_bench
    from openk2.code.headless import make_provider, token_counter

    start = time.monotonic()

    safety = guarded(sandbox=sandbox)

    if oracle:
        results = await run_bench(chosen, settings, make_provider=oracle_provider,
                                  make_safety=safety, repeats=repeats, jobs=jobs)  # fmt: skip
        return summarize(results, model="oracle", repeats=repeats,
                         elapsed_s=time.monotonic() - start)
    with endpoint(settings, None) as live:
        make_provider(live)  # fails fast on a missing --base-url / --model
        results = await run_bench(chosen, live, make_provider=lambda _t: make_provider(live),
                                  make_safety=safety, repeats=repeats, jobs=jobs,
                                  count=token_counter(live))  # fmt: skip
    return summarize(results, model=str(live.model), repeats=repeats,
                     elapsed_s=time.monotonic() - start)


def _print(report: dict[str, Any], out: Path | None, as_json: bool) -> None:
    import json

    from openk2.code.bench.report import text_report, write_report

    if out is not None:
        typer.echo(f"report: {write_report(report, out)}", err=True)
    typer.echo(json.dumps(report, indent=2) if as_json else text_report(report))
