"""A run killed halfway (SIGKILL) resumes from the cache without asking anything twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openk2
from openk2.evals.client import RetryConfig
from openk2.evals.endpoints import parse_endpoint
from openk2.evals.runner import RunConfig, run

SUITES = ["math", "functions", "tool-calls"]
N = 12


def _eval(out: Path, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(openk2.__file__).parents[1])}
    args = [sys.executable, "-m", "openk2", "eval", "--endpoint", f"f={url},concurrency=2",
            "--n", str(N), "--out", str(out), "--retry-delay", "0.01", "--no-html", "--json"]
    for suite in SUITES:
        args += ["--suite", suite]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigkill_then_resume_repeats_no_request(tmp_path: Path, fake_endpoint) -> None:
    fake = fake_endpoint(SUITES, N, accuracy=0.7, hang_after=20)
    first = _eval(tmp_path, fake.url)
    # both slots stuck on hanging calls: every answer received so far is committed
    _wait_for(lambda: fake.hanging >= 2)
    first.kill()
    first.wait(10)
    assert sum(fake.answered.values()) == 20
    fake.profile.hang_after = None
    second = _eval(tmp_path, fake.url)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()
    report = json.loads(out)
    assert max(fake.answered.values()) == 1  # no request was answered twice
    total_calls = sum(len(s.calls) for s in _samples())
    assert sum(fake.answered.values()) == total_calls
    assert report["endpoints"]["f"]["calls_sent"] == total_calls - 20
    rows = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(rows) == len(_samples())
    assert sum(json.loads(r)["cached"] for r in rows) >= 1
    # the same seeded run, uninterrupted, against an identical endpoint: same verdicts
    twin = fake_endpoint(SUITES, N, accuracy=0.7)
    whole = run(RunConfig(endpoints=[parse_endpoint(f"f={twin.url}")], suites=SUITES, n=N,
                          out_dir=tmp_path / "whole", html=False,
                          retry=RetryConfig(base_delay_s=0.01)))
    for suite in SUITES:
        got, want = (r["endpoints"]["f"]["suites"][suite] for r in (report, whole))
        assert (got["passed"], got["samples"]) == (want["passed"], want["samples"]), suite


def _samples() -> list:
    from openk2.evals.suites import get_suite

    return [s for name in SUITES for s in get_suite(name).samples(N, 0)]
