"""`openk2 eval --json`, report.html and `openk2 eval compare` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from openk2.cli import _register_commands, app


def _eval(out: Path, *endpoints: str) -> dict:
    _register_commands()
    args = ["eval", "--suite", "math", "--suite", "functions", "--n", "8", "--out", str(out),
            "--retry-delay", "0.01", "--json"]
    for e in endpoints:
        args += ["--endpoint", e]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eval_json_report_and_compare(tmp_path: Path, fake_endpoint) -> None:
    good = fake_endpoint(["math", "functions"], 8)
    bad = fake_endpoint(["math", "functions"], 8, accuracy=0.0)
    report = _eval(tmp_path / "a", f"good={good.url},price_in=1,price_out=1", f"bad={bad.url}")
    row = report["endpoints"]["good"]["suites"]["math"]
    for key in ("n", "pass_at_1", "ci95", "pass_hat_k", "cost_per_success", "latency_p50_s"):
        assert key in row
    assert row["pass_at_1"] == 1.0 and report["endpoints"]["bad"]["suites"]["math"][
        "pass_at_1"] == 0.0
    page = (tmp_path / "a" / "report.html").read_text()
    assert "data:image/png;base64," in page and "http" not in page.split("<body>")[0]
    _eval(tmp_path / "b", f"good={bad.url}")
    result = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "a" / "report.json"),
                                      str(tmp_path / "b" / "report.json"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["suite"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["math"]["delta"] == -1.0 and rows["math"]["significant"]


def test_eval_bad_arguments_exit_2(tmp_path: Path) -> None:
    _register_commands()
    for args in (["eval", "--suite", "math"],
                 ["eval", "--endpoint", "x=http://127.0.0.1:9/v1", "--suite", "nope"],
                 ["eval", "--endpoint", "x=localhost:8000", "--suite", "math"],
                 ["eval", "--endpoint", "x=http://127.0.0.1:9/v1", "--suite", "niah",
                  "--niah-depths", "0.5,2"],
                 ["eval", "--endpoint", "x=http://127.0.0.1:9/v1", "--suite", "preflight",
                  "--preflight-checks", "n,telepathy"],
                 ["eval", "--endpoint", "x=http://127.0.0.1:9/v1", "--suite", "horizon",
                  "--horizon-steps", "1,x"]):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output
