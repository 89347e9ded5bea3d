"""Shadow-git snapshots restore edits, deletions and created files; the user's repo is untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openk2.agent.guard import SnapshotError, SnapshotStore


@pytest.fixture
def store(workspace: Path, tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(workspace, root=tmp_path / "snapshots")


def test_restore_edit_delete_create(store: SnapshotStore, workspace: Path) -> None:
    (workspace / ".gitignore").write_text("*.log\n")
    (workspace / "build.log").write_text("ignored\n")
    (workspace / "src" / "util.py").write_text("util\n")
    sid = store.snapshot("before edit")
    (workspace / "src" / "app.py").write_text("broken\n")
    (workspace / "src" / "new.py").write_text("new\n")
    (workspace / "src" / "util.py").unlink()
    (workspace / "build.log").write_text("changed but ignored\n")
    assert set(store.changed_files(sid[:10])) == {"src/app.py", "src/new.py", "src/util.py"}
    safety = store.restore(sid[:10])
    assert (workspace / "src" / "app.py").read_text() == "print('hi')\n"
    assert not (workspace / "src" / "new.py").exists()
    assert (workspace / "src" / "util.py").read_text() == "util\n"
    assert (workspace / "build.log").read_text() == "changed but ignored\n"  # ignored: untouched
    store.restore(safety)  # a restore can itself be undone
    assert (workspace / "src" / "new.py").read_text() == "new\n"


def test_list_newest_first(store: SnapshotStore) -> None:
    a = store.snapshot("one")
    b = store.snapshot("two")
    assert [(s.id, s.label) for s in store.list()] == [(b, "two"), (a, "one")]


def test_users_repository_untouched(store: SnapshotStore, workspace: Path) -> None:
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    before = sorted(p.name for p in (workspace / ".git").iterdir())
    store.snapshot("x")
    assert sorted(p.name for p in (workspace / ".git").iterdir()) == before
    assert not store.git_dir.is_relative_to(workspace)


def test_unknown_or_bad_id(store: SnapshotStore) -> None:
    store.snapshot("x")
    for bad in ("deadbeef", "not-hex", ""):
        with pytest.raises(SnapshotError):
            store.restore(bad)


def test_store_inside_workspace_refused(workspace: Path) -> None:
    with pytest.raises(SnapshotError, match="outside the workspace"):
        SnapshotStore(workspace, root=workspace / ".snapshots")
