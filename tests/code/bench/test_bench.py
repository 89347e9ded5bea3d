"""Tier B harness: the oracle passes every task, a do-nothing model fails every one, edited
tests are flagged, and the CLI writes the report."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from openk2.agent.llm.scripted import Reply, ScriptedProvider, call
from openk2.code.bench.grade import edited_tests, hash_tests
from openk2.code.bench.oracle import oracle_provider, oracle_script
from openk2.code.bench.report import summarize
from openk2.code.bench.run import guarded, run_bench
from openk2.code.bench.tasks import BenchTask, load_tasks
from openk2.code.build import Safety
from openk2.code.config import CodeSettings
from openk2.code.gate import DenyAsks, Verdict
from openk2.code.launch import PlainLauncher
from openk2.code.workspace import Workspace

SETTINGS = CodeSettings(model="scripted", mode="auto", max_steps=10)


class AllowAll:
    """A gate that allows every call (the oracle only edits inside its workspace)."""

    async def review(self, action: object) -> Verdict:
        return Verdict("allow", "test")

    async def settled(self, action: object, verdict: Verdict) -> None:
        return None

    async def after(self, action: object, tool_input: dict, output: str) -> str | None:
        return None

    async def stop(self) -> str | None:
        return None


def _safety(settings: CodeSettings, ws: Workspace) -> Safety:
    return Safety(gate=AllowAll(), approver=DenyAsks(), launcher=PlainLauncher())


def _bench(tasks: list[BenchTask], make_provider) -> dict:
    results = asyncio.run(run_bench(tasks, SETTINGS, make_provider=make_provider,
                                    make_safety=_safety, jobs=4))
    return summarize(results, model="t", repeats=1)


def test_there_are_enough_tasks_of_each_kind() -> None:
    tasks = load_tasks()
    kinds = {t.grade[0] for t in tasks}
    assert len(tasks) >= 20 and {"{python}", "node", "bash"} <= kinds
    assert all(t.fix and any(t.hidden.iterdir()) for t in tasks)
    assert not any(p.name.startswith("test_hidden") for t in tasks for p in t.repo.rglob("*"))


def test_oracle_passes_every_task() -> None:
    report = _bench(load_tasks(), oracle_provider)
    failed = [(r["task"], r["grade_output"]) for r in report["results"]
              if r["outcome"] not in ("passed", "skipped")]
    assert failed == []
    assert report["pass_at_1"] == 1.0 and report["tests_edited"] == []
    assert report["mean_steps"] >= 3 and report["total_tokens"] > 0


def test_do_nothing_fails_every_task() -> None:
    report = _bench(load_tasks(), lambda t: ScriptedProvider([Reply(text="Looks fine to me.")]))
    assert report["runs"] >= 20 and report["pass_at_1"] == 0.0
    assert {r["outcome"] for r in report["results"]} <= {"failed", "skipped"}
    assert all(r["steps"] == 1 for r in report["results"] if r["outcome"] == "failed")


def test_editing_a_test_file_is_flagged() -> None:
    task = load_tasks("flaky_unique")[0]

    def cheat(t: BenchTask) -> ScriptedProvider:
        skip = Reply(tool_calls=[call("StrReplaceFile", 0, path="test_unique.py", edit={
            "old": "def test_order", "new": "import pytest\n\n@pytest.mark.skip\ndef test_order"})])
        return ScriptedProvider([*oracle_script(t)[:-1], skip, Reply(text="done")])

    report = _bench([task], cheat)
    assert report["results"][0]["tests_edited"] == ["test_unique.py"]
    assert report["tests_edited"] == ["flaky_unique"]


def test_hashing_sees_changes_deletions_and_additions(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    for name in ("test_a.py", "b_test.py", "tests/c.py", "lib.py"):
        (tmp_path / name).write_text("x")
    before = hash_tests(tmp_path)
    assert sorted(before) == ["b_test.py", "test_a.py", "tests/c.py"]
    (tmp_path / "test_a.py").write_text("y")
    (tmp_path / "b_test.py").unlink()
    (tmp_path / "x.test.js").write_text("z")
    (tmp_path / "lib.py").write_text("changed code is not a test edit")
    assert edited_tests(before, hash_tests(tmp_path)) == ["b_test.py", "test_a.py", "x.test.js"]


def test_task_needing_a_missing_executable_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("openk2.code.bench.tasks.shutil.which", lambda exe: None)
    report = _bench(load_tasks("js_*"), oracle_provider)
    assert report["runs"] == 0 and report["skipped"] == ["js_camel_case", "js_clamp"]


def test_crashing_provider_is_a_failed_run_not_a_crashed_bench() -> None:
    report = _bench(load_tasks("wrong_*"), lambda t: ScriptedProvider([]))
    assert report["runs"] == 2 and report["pass_at_1"] == 0.0
    assert all(r["error"] for r in report["results"])


def _cli(*args: str) -> tuple[int, str, str]:
    import subprocess

    proc = subprocess.run([sys.executable, "-c", "from openk2.cli import main; main()",
                           "code", "bench", *args],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_oracle_json_and_report_file(tmp_path: Path) -> None:
    rc, out, err = _cli("--oracle", "--no-sandbox", "--tasks", "wrong_*,sh_exit*", "--json",
                        "--out", str(tmp_path), "--repeats", "2")
    assert rc == 0, err
    report = json.loads(out)
    assert report["tasks"] == 3 and report["runs"] == 6 and report["pass_at_1"] == 1.0
    assert report["pass_hat_k"] == 1.0
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_cli_bad_usage() -> None:
    rc, _, err = _cli("--tasks", "no_such_task")
    assert rc == 2 and "no bench task matches" in err
    rc, _, err = _cli("--tasks", "wrong_op*")
    assert rc == 2 and "--base-url" in err


def test_model_runs_tests_in_the_sandbox_under_the_default_mode() -> None:
    """The CLI's defaults (yolo, real guard, bubblewrap) let a model run the public tests."""
    import shutil

    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (make sandbox)")
    task = load_tasks("slug_lowercase")[0]
    shell = Reply(tool_calls=[call("Shell", 0, command="python3 -m pytest -q -p no:cacheprovider"
                                   " test_slug.py")])  # fmt: skip
    script = oracle_script(task)
    provider = ScriptedProvider([shell, *script])
    settings = CodeSettings(model="scripted", mode="yolo", max_steps=10)
    results = asyncio.run(run_bench([task], settings, make_provider=lambda t: provider,
                                    make_safety=guarded()))
    assert results[0].passed and results[0].tool_calls == 3  # Shell, ReadFile, StrReplaceFile
    ran = [m for m in provider.calls[1].messages if m.role == "tool"][0].content
    assert "1 passed" in ran, ran


def test_grader_runs_the_agents_code_in_the_sandbox(tmp_path: Path) -> None:
    """Code the agent wrote runs at grading time; it must not get the user's rights then."""
    import shutil

    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (make sandbox)")
    escaped = tmp_path / "escaped"
    code = (f"try:\n    open({str(escaped)!r}, 'w').write('x')\nexcept OSError:\n    pass\n\n"
            "def slugify(title):\n    return '-'.join(title.lower().split())\n")
    provider = ScriptedProvider([Reply(tool_calls=[call("WriteFile", 0, path="slug.py",
                                                        content=code)]), Reply(text="done")])
    settings = CodeSettings(model="scripted", mode="yolo", max_steps=5)
    results = asyncio.run(run_bench(load_tasks("slug_lowercase"), settings,
                                    make_provider=lambda t: provider, make_safety=guarded()))
    assert results[0].passed, results[0].grade_output
    assert not escaped.exists()
