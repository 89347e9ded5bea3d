"""Grading: hash the test files around the agent's run, then run the hidden tests in its copy.

"Tests edited" is judged on the repo's own test files (the hidden ones are not there yet while
the agent works): a changed, deleted or newly added test file flags the run, because a model
that rewrites tests can make any grader pass.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from openk2.code.bench.tasks import BenchTask
from openk2.code.tools.base import ShellLauncher

TEST_PATTERNS = ("test_*", "*_test.*", "*.test.*", "tests/*", "test/*", "conftest.py")
GRADE_TIMEOUT_S = 60.0


def is_test_file(rel: str) -> bool:
    """Whether a workspace-relative path is a test by the usual naming rules."""
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in TEST_PATTERNS)


def hash_tests(root: Path) -> dict[str, str]:
    """sha256 of every test file under `root`, by relative path."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".") and is_test_file(rel):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def edited_tests(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Test files changed, deleted or added between two `hash_tests` snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


@dataclass(frozen=True, slots=True)
class Grade:
    """The hidden tests' verdict."""

    passed: bool
    output: str


async def grade(task: BenchTask, workspace: Path, launcher: ShellLauncher) -> Grade:
    """Copy the hidden tests over the workspace and run the task's grading command there.

    It runs through the session's own launcher: the code under test is the agent's, so it gets
    the sandbox the agent's commands had, not the user's full rights."""
    shutil.copytree(task.hidden, workspace, dirs_exist_ok=True)
    command = shlex.join(sys.executable if a == "{python}" else a for a in task.grade)
    env = {**launcher.env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *launcher.argv(command, workspace), cwd=workspace, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GRADE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Grade(False, f"grading timed out after {GRADE_TIMEOUT_S:.0f} s")
    return Grade(proc.returncode == 0, out.decode(errors="replace")[-2000:])
