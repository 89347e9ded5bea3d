"""`openk2 code`'s argument parsing: a positional TASK beside the `bench` subcommand."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

import openk2.cli.code_bench_commands  # noqa: F401  (registers `openk2 code bench`)
from openk2.cli import app
from openk2.cli.code_commands import _first_line


def test_bench_is_still_a_subcommand() -> None:
    result = CliRunner().invoke(app, ["code", "bench", "--help"])
    assert result.exit_code == 0 and "bench [OPTIONS]" in result.output


def test_options_may_follow_the_task() -> None:
    result = CliRunner().invoke(app, ["code", "fix it", "--output-format", "nope"])
    assert result.exit_code == 2 and "--output-format must be one of" in result.output


def test_the_task_is_the_first_line_read() -> None:
    typed = iter(["/exit"])

    async def read_line(_: str) -> str:
        return next(typed)

    read = _first_line("fix the bug", read_line)
    lines = asyncio.run(_lines(read, 2))
    assert lines == ["fix the bug", "/exit"]


async def _lines(read, n: int) -> list[str]:
    return [await read("> ") for _ in range(n)]
