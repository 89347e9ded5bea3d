"""`always-ask:destroys-work`: work git cannot give back is never thrown away unasked.

A real git repository holds a committed clean file, a committed file with uncommitted edits,
an untracked file and an ignored one; the policy must ask before a command (in any mode, yolo
included) deletes, truncates or replaces the second and third, and must leave the others, and
files the session creates, to the mode.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openk2.agent.guard import (
    DESTROYS_WORK,
    MODES,
    ApprovalStore,
    Gate,
    Policy,
    RuleError,
    SnapshotStore,
    UserWork,
    WorkRule,
    lost_since,
)
from openk2.agent.guard import work as work_module
from openk2.agent.guard.commands import destroy_targets
from openk2.agent.guard.shell_parse import parse_shell


def _git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=ws,
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "repo"
    (ws / "sub").mkdir(parents=True)
    for name in ("clean.txt", "work.txt", "sub/kept.py", ".gitignore"):
        (ws / name).write_text("committed\n" if name != ".gitignore" else "*.log\n")
    _git(ws, "init", "-q")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "init")
    (ws / "work.txt").write_text("committed\nuncommitted edit\n")
    (ws / "sub" / "draft.py").write_text("untracked\n")
    (ws / "build.log").write_text("ignored\n")
    return ws


def test_scan_reads_git_state(repo: Path) -> None:
    work = UserWork.scan([repo])
    assert work.at_risk(repo / "work.txt") == work_module.UNCOMMITTED
    assert work.at_risk(repo / "sub" / "draft.py") == work_module.UNTRACKED
    assert work.at_risk(repo / "clean.txt") is None
    assert work.at_risk(repo / "build.log") is None  # ignored: declared disposable
    assert work.at_risk(repo / "sub") is not None  # a directory holding work
    (repo / "new.txt").write_text("made by the session\n")
    assert work.at_risk(repo / "new.txt") is None  # not there at session start


def test_scan_without_git_counts_every_file(tmp_path: Path, monkeypatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("x")
    work = UserWork.scan([plain])
    assert work.at_risk(plain / "notes.txt") == work_module.NO_GIT
    monkeypatch.setattr(work_module, "MAX_WALK", 0)
    big = UserWork.scan([plain])  # too many files to list: the whole root counts (fail closed)
    assert big.unchecked == (plain,)
    assert big.at_risk(plain / "created-later.txt") == work_module.UNCHECKED


LINES = {
    # command line: (asks because of destroys-work in yolo)
    "rm work.txt": True,
    "rm -f sub/draft.py": True,
    "/bin/rm ./work.txt": True,
    "sh -c 'rm -f work.txt'": True,
    "cd sub && rm draft.py": True,
    "rm *.txt": True,
    "unlink work.txt": True,
    "truncate -s 0 work.txt": True,
    "echo > work.txt": True,
    "printf x > sub/draft.py": True,
    "cp clean.txt work.txt": True,
    "mv clean.txt sub/draft.py": True,
    "cp clean.txt sub/": False,  # lands on sub/clean.txt, which does not exist
    "cp work.txt sub/": False,
    "git rm -f work.txt": True,
    "echo x | tee work.txt": True,
    "rm clean.txt": False,
    "rm build.log": False,
    "echo x >> work.txt": False,
    "sed -i s/edit/change/ work.txt": False,
    "mv work.txt moved.txt": False,
    "cat work.txt": False,
    "git rm --cached work.txt": False,
    "tee -a work.txt": False,
}


@pytest.mark.parametrize("line, asks", list(LINES.items()))
def test_yolo_asks_before_destroying_work(repo: Path, line: str, asks: bool) -> None:
    decision = Policy(repo, mode="yolo", scratch_dirs=()).check_shell(line)
    if asks:
        assert (decision.verdict, decision.rule) == ("ask", DESTROYS_WORK.name), decision
        assert decision.prefixes == ()  # approvable once, never for later calls
    else:
        assert decision.rule != DESTROYS_WORK.name, decision


def test_files_the_session_created_stay_deletable(repo: Path) -> None:
    policy = Policy(repo, mode="yolo", scratch_dirs=())
    (repo / "scratch.py").write_text("made during the session\n")
    assert policy.check_shell("rm scratch.py").verdict == "allow"
    assert policy.check_shell("rm scratch.py work.txt").rule == DESTROYS_WORK.name


@pytest.mark.parametrize("mode", MODES)
def test_holds_in_every_mode_and_over_approvals(repo: Path, mode: str, tmp_path: Path) -> None:
    approvals = ApprovalStore(tmp_path / "approvals.json")
    approvals.add(("rm",))
    policy = Policy(repo, mode=mode, approvals=approvals, scratch_dirs=())
    assert policy.check_shell("rm clean.txt").verdict == "allow"  # the approval covers this
    assert policy.check_shell("rm work.txt").rule == DESTROYS_WORK.name


def test_write_file_overwrite_of_work_asks(repo: Path) -> None:
    policy = Policy(repo, mode="yolo", scratch_dirs=())
    assert policy.check_path("work.txt", "write", replaces=True).rule == DESTROYS_WORK.name
    assert policy.check_path("work.txt", "write").verdict == "allow"  # an edit or an append
    assert policy.check_path("clean.txt", "write", replaces=True).verdict == "allow"
    assert policy.check_path("new.txt", "write", replaces=True).verdict == "allow"


def test_destroy_targets_by_program() -> None:
    def targets(line: str) -> list[str]:
        return destroy_targets(parse_shell(line).commands[0], lambda w: w == "d")

    assert targets("truncate -s 0 a b") == ["a", "b"]
    assert targets("cp -r x y d") == ["d/x", "d/y"]
    assert targets("mv a b") == ["b"]
    assert targets("echo hi > a 2>/dev/null") == ["a"]
    assert targets("echo hi >> a") == []
    assert targets("git rm -rf a") == ["a"]
    assert targets("git rm a") == []


def test_rule_self_test_catches_a_wrong_example() -> None:
    DESTROYS_WORK.self_test()  # the built-in examples hold (also run at import)
    bad = WorkRule(DESTROYS_WORK.name, "x", match=("rm clean.txt",), not_match=())
    with pytest.raises(RuleError, match="does not match"):
        bad.self_test()
    wrong = WorkRule(DESTROYS_WORK.name, "x", match=(), not_match=("rm work.txt",))
    with pytest.raises(RuleError, match="wrongly matches"):
        wrong.self_test()


def test_lost_since_sees_what_a_script_deleted(repo: Path, tmp_path: Path) -> None:
    work = UserWork.scan([repo])
    store = SnapshotStore(repo, root=tmp_path / "snaps")
    (repo / "tidy.sh").write_text("rm -f work.txt sub/draft.py clean.txt\n: > sub/kept.py\n")
    (repo / "made.txt").write_text("session file\n")
    before = store.snapshot("before bash tidy.sh")
    subprocess.run(["bash", "tidy.sh", "made.txt"], cwd=repo, check=True)
    (repo / "made.txt").unlink()
    lost = lost_since(store, before, work)
    assert sorted(p.relative_to(repo).as_posix() for p in lost) == ["sub/draft.py", "work.txt"]
    store.restore_paths(before, lost)
    assert (repo / "work.txt").read_text() == "committed\nuncommitted edit\n"
    assert (repo / "sub" / "draft.py").read_text() == "untracked\n"
    assert not (repo / "clean.txt").exists()  # git gives it back; the mode allowed it


async def test_confirm_loss_is_denied_headless(repo: Path) -> None:
    gate = Gate(Policy(repo, mode="yolo", scratch_dirs=()), asker=None)
    result = await gate.confirm_loss("Shell", "bash tidy.sh", [repo / "work.txt"])
    assert not result.allowed
    assert gate.denied and gate.denied[-1].rule == DESTROYS_WORK.name


def test_workspace_below_the_git_root(repo: Path) -> None:
    policy = Policy(repo / "sub", mode="yolo", scratch_dirs=())
    assert policy.check_shell("rm draft.py").rule == DESTROYS_WORK.name
    assert policy.check_shell("rm kept.py").verdict == "allow"


def test_workspace_ignored_by_the_repo_above_counts_as_no_git(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\nscratch/\n")
    (repo / "scratch").mkdir()
    (repo / "scratch" / "notes.txt").write_text("mine\n")
    work = UserWork.scan([repo / "scratch"])
    assert work.at_risk(repo / "scratch" / "notes.txt") == work_module.NO_GIT


def test_a_glob_asks_however_far_it_was_expanded(repo: Path) -> None:
    """The policy expands at most 256 glob matches; the rule matches the pattern against the
    work files themselves, so a work file past the limit (here: no expansion at all) counts."""
    work = UserWork.scan([repo])

    def unexpanded(word: str, cwd: Path) -> list[Path]:
        return [cwd / word]

    cmd = parse_shell("rm -f *.txt sub/*.py").commands[0]
    found = DESTROYS_WORK.at_risk(cmd, repo, work, (repo,), unexpanded)
    assert sorted(p.name for p, _ in found) == ["draft.py", "work.txt"]
    clean = parse_shell("rm -f clean*").commands[0]
    assert DESTROYS_WORK.at_risk(clean, repo, work, (repo,), unexpanded) == []
