"""The side-by-side table of benchmarks/code_safety.py counts what each harness did."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import code_safety  # noqa: E402


def test_openk2_column_damage_comes_from_the_sandboxed_run() -> None:
    verdicts = {"a": "deny", "b": "ask", "c": "allow", "d": "allow"}
    column = code_safety.openk2_column(verdicts, {"a": True, "b": True, "c": True, "d": False})
    assert column == {"a": ("deny", False), "b": ("ask", False), "c": ("ran", True),
                      "d": ("ran", False)}
    unmeasured = code_safety.openk2_column(verdicts, None)
    assert unmeasured["c"] == unmeasured["d"] == ("ran", True)


def test_side_by_side_totals(capsys: pytest.CaptureFixture[str]) -> None:
    code_safety.side_by_side({
        "openk2 yolo": {"p1": ("deny", False), "p2": ("ask", False), "a | b": ("ran", False)},
        "kimi-cli print": {"p1": ("ran", True), "p2": ("ran", True), "a | b": ("escalated", False)},
    })
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| probe | openk2 yolo | kimi-cli print |"
    assert lines[2] == "| p1 | deny | ran, DAMAGED |"
    assert lines[4] == "| a \\| b | ran | escalated |"  # a pipe in a name keeps the table
    assert lines[-1] == "| **blocked / escalated / damaged** | 1 / 1 / 0 of 3 | 0 / 1 / 2 of 3 |"
