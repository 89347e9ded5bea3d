"""Prefix approvals: persisted per project, never broader than what was approved."""

from __future__ import annotations

from pathlib import Path

import pytest

from openk2.agent.guard import (
    ApprovalError,
    ApprovalStore,
    approvals_path,
    parse_shell,
    suggest_prefix,
)


def first(command: str):  # noqa: ANN201 - a SimpleCommand
    return parse_shell(command).commands[0]


def test_persisted_per_project(tmp_path: Path, workspace: Path, state_dir: Path) -> None:
    store = ApprovalStore.for_workspace(workspace)
    sentence = store.add(("git", "status"))
    assert "`git status`" in sentence and "this project" in sentence
    assert approvals_path(workspace).is_relative_to(state_dir)
    again = ApprovalStore.for_workspace(workspace)
    assert again.covering(first("git status -s")) == ("git", "status")
    other = tmp_path / "other"
    other.mkdir()
    assert ApprovalStore.for_workspace(other).prefixes == ()


@pytest.mark.parametrize(
    "command, covered",
    [
        ("git status", True),
        ("git status --short", True),
        ("/usr/bin/git status", True),
        ("git -C src status", True),
        ("git statusx", False),
        ("git stash", False),
        ("git", False),
        ("git push", False),
        ("gitk status", False),
        ("git $SUB", False),
    ],
)
def test_prefix_never_broader(tmp_path: Path, command: str, covered: bool) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    store.add(("git", "status"))
    assert (store.covering(first(command)) is not None) is covered


@pytest.mark.parametrize(
    "prefix", [(), ("bash",), ("sh",), ("python",), ("sudo",), ("env",), ("git", "*"), ("",)]
)
def test_refuses_unbounded_prefixes(tmp_path: Path, prefix: tuple[str, ...]) -> None:
    with pytest.raises(ApprovalError):
        ApprovalStore(tmp_path / "a.json").add(prefix)


def test_store_must_be_outside_workspace(workspace: Path) -> None:
    with pytest.raises(ApprovalError, match="outside the workspace"):
        ApprovalStore(workspace / ".openk2" / "approvals.json", workspace=workspace)


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("{oops")
    with pytest.raises(ApprovalError, match="cannot read approvals file"):
        ApprovalStore(path)
    assert path.read_text() == "{oops"  # nothing lost


def test_remove(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    store.add(("make", "test"))
    assert store.remove(("make", "test")) and not store.remove(("make", "test"))
    assert ApprovalStore(tmp_path / "a.json").prefixes == ()


@pytest.mark.parametrize(
    "command, prefix",
    [
        ("git status -s", ("git", "status")),
        ("git -C x log --oneline", ("git", "log")),
        ("pytest tests/ -x", ("pytest", "tests/")),
        ("npm run build -- --watch", ("npm", "run", "build")),
        ("python -m pytest -q", ("python", "-m", "pytest")),
        ("ls -la", ("ls",)),
        ("make", ("make",)),
        ("bash", None),
        ("$CMD x", None),
    ],
)
def test_suggest_prefix(command: str, prefix: tuple[str, ...] | None) -> None:
    assert suggest_prefix(first(command)) == prefix


def test_two_sessions_do_not_lose_each_others_approvals(tmp_path: Path) -> None:
    one, two = ApprovalStore(tmp_path / "a.json"), ApprovalStore(tmp_path / "a.json")
    one.add(("git", "status"))
    two.add(("make", "test"))
    assert set(ApprovalStore(tmp_path / "a.json").prefixes) == {("git", "status"), ("make", "test")}
