"""The coding tools on a real directory: reads, edits, globbing, both Grep back ends, Shell."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from openk2.agent.tools.base import ToolError
from openk2.code.launch import PlainLauncher
from openk2.code.tools.base import TodoBoard
from openk2.code.tools.glob import Glob
from openk2.code.tools.grep import Grep
from openk2.code.tools.read_file import ReadFile
from openk2.code.tools.set_todo_list import SetTodoList
from openk2.code.tools.shell import Shell
from openk2.code.tools.str_replace_file import StrReplaceFile
from openk2.code.tools.write_file import WriteFile
from openk2.code.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("import os\n\ndef foo():\n    return 1\n")
    (root / "src" / "b.py").write_text("x = 1\n# foo here\ny = 2\nz = 3\nfoo = 4\n")
    (root / "README.md").write_text("Foo project\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "c.py").write_text("foo\n")
    (root / "bin.dat").write_bytes(b"foo\0bar")
    return Workspace.open(root)


def run(tool, **args):
    import asyncio

    return asyncio.run(tool.run(tool.Params.model_validate(args)))


def test_read_file_numbers_lines_and_pages(ws: Workspace) -> None:
    (ws.root / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 1501)))
    out = run(ReadFile(ws), path="long.txt").output
    assert out.startswith("     1\tline 1\n") and "  1000\tline 1000" in out
    assert out.endswith("[500 more lines; call again with line_offset=1001]")
    out = run(ReadFile(ws), path="long.txt", line_offset=1499, n_lines=5).output
    assert out == "  1499\tline 1499\n  1500\tline 1500"
    assert isinstance(run(ReadFile(ws), path="bin.dat"), ToolError)
    assert "is a directory" in run(ReadFile(ws), path="src").output


def test_paths_resolve_links_and_dotdot(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, ws.root / "link.txt")
    tool = ReadFile(ws)
    action = tool.action(tool.Params(path="link.txt"))
    assert action.paths == (outside,) and not ws.contains(action.paths[0])
    action = tool.action(tool.Params(path="src/../../outside.txt"))
    assert action.paths == (outside,)
    assert ws.contains(tool.action(tool.Params(path="src/pkg/a.py")).paths[0])


def test_write_file_modes(ws: Workspace) -> None:
    run(WriteFile(ws), path="new/dir/f.txt", content="one\n")
    run(WriteFile(ws), path="new/dir/f.txt", content="two\n", mode="append")
    assert (ws.root / "new" / "dir" / "f.txt").read_text() == "one\ntwo\n"
    run(WriteFile(ws), path="new/dir/f.txt", content="three\n")
    assert (ws.root / "new" / "dir" / "f.txt").read_text() == "three\n"


def test_str_replace_single_many_all_and_misses(ws: Workspace) -> None:
    tool = StrReplaceFile(ws)
    path = ws.root / "src" / "b.py"
    assert "occurs 2 times" in run(tool, path="src/b.py", edit={"old": "foo", "new": "bar"}).output
    run(tool, path="src/b.py", edit={"old": "foo", "new": "bar", "replace_all": True})
    assert path.read_text().count("bar") == 2
    edits = [{"old": "x = 1", "new": "x = 10"}, {"old": "y = 2", "new": "y = 20"}]
    assert "applied 2 edit(s)" in run(tool, path="src/b.py", edit=edits).output
    before = path.read_text()
    bad = [{"old": "z = 3", "new": "z = 30"}, {"old": "q = 99", "new": "no"}]
    out = run(tool, path="src/b.py", edit=bad).output
    assert "edit 2 of 2 was not applied" in out and path.read_text() == before
    out = run(tool, path="src/b.py", edit={"old": "z =  3\n", "new": "w"}).output
    assert "starts at line 4" in out and "z = 3" in out


def test_glob(ws: Workspace) -> None:
    out = run(Glob(ws), pattern="**/*.py").output.splitlines()
    assert out == [".hidden/c.py", "src/b.py", "src/pkg/a.py"]
    assert run(Glob(ws), pattern="*", directory="src").output == "src/b.py\nsrc/pkg/"
    assert isinstance(run(Glob(ws), pattern="../*"), ToolError)


GREP_CASES = [
    {"pattern": "foo"},
    {"pattern": "FOO", "ignore_case": True},
    {"pattern": "foo", "context_lines": 1},
    {"pattern": "foo", "glob": "*.py", "context_lines": 2},
    {"pattern": "foo", "path": "src"},
    {"pattern": "foo", "path": "src/b.py"},
    {"pattern": "foo", "output_mode": "files_with_matches"},
    {"pattern": r"def \w+\(", "path": "src/pkg"},
    {"pattern": "nothing-matches-this"},
]


@pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep not installed")
@pytest.mark.parametrize("args", GREP_CASES)
def test_grep_ripgrep_and_python_agree(ws: Workspace, args: dict) -> None:
    with_rg = run(Grep(ws, use_rg=True), **args).output
    plain = run(Grep(ws, use_rg=False), **args).output
    assert with_rg == plain


def test_grep_python_output(ws: Workspace) -> None:
    out = run(Grep(ws, use_rg=False), pattern="foo", context_lines=1).output
    assert out.splitlines() == [
        "src/b.py-1-x = 1", "src/b.py:2:# foo here", "src/b.py-3-y = 2",
        "src/b.py-4-z = 3", "src/b.py:5:foo = 4", "--",
        "src/pkg/a.py-2-", "src/pkg/a.py:3:def foo():", "src/pkg/a.py-4-    return 1"]
    bad = run(Grep(ws, use_rg=False), pattern="(")
    assert isinstance(bad, ToolError) and "invalid regular expression" in bad.message


def test_shell_output_exit_and_timeout(ws: Workspace) -> None:
    shell = Shell(ws, PlainLauncher())
    assert run(shell, command="pwd").output.strip() == str(ws.root)
    failed = run(shell, command="echo oops >&2; exit 3")
    assert isinstance(failed, ToolError) and "code 3" in failed.message and "oops" in failed.message
    slow = run(shell, command="sleep 30 & sleep 30", timeout=1)
    assert isinstance(slow, ToolError) and "within 1 s" in slow.message


def test_set_todo_list(ws: Workspace) -> None:
    board = TodoBoard()
    out = run(SetTodoList(board), todos=[{"title": "a", "status": "done"}, {"title": "b"}])
    assert out.output == "[x] a\n[ ] b" and [t.title for t in board.items] == ["a", "b"]


def test_os_errors_and_non_utf8_are_tool_errors(ws: Workspace) -> None:
    import asyncio

    from openk2.agent.llm.scripted import call
    from openk2.code.gate import DenyAsks, GatedToolset, Verdict

    class Allow:
        async def review(self, action):
            return Verdict("allow")

        async def settled(self, action, verdict):
            return None

        async def after(self, action, tool_input, output):
            return None

    (ws.root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    out = run(StrReplaceFile(ws), path="latin1.txt", edit={"old": "caf", "new": "x"})
    assert "not UTF-8" in out.output
    assert (ws.root / "latin1.txt").read_bytes() == "caf\xe9\n".encode("latin-1")
    toolset = GatedToolset([WriteFile(ws)], Allow(), DenyAsks())
    result = asyncio.run(toolset.dispatch(call("WriteFile", 0, path="README.md/x.txt",
                                               content="x")))
    assert isinstance(result, ToolError) and "failed" in result.message
    assert (ws.root / "README.md").read_text() == "Foo project\n"
