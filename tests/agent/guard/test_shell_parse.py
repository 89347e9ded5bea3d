"""tree-sitter-bash parsing: every simple command is found, wrappers are peeled."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.agent.guard import parse_shell
from openk2.agent.guard.commands import is_read_only, write_targets


def argvs(command: str) -> list[tuple[str, ...]]:
    parsed = parse_shell(command)
    assert parsed.error is None, parsed.error
    return [c.argv for c in parsed.commands if c.argv]


@pytest.mark.parametrize(
    "command, expected",
    [
        (
            "ls -la | grep x && echo ok; true || false",
            [("ls", "-la"), ("grep", "x"), ("echo", "ok"), ("true",), ("false",)],
        ),
        ("\\rm \"a b\" 'c' d\\ e", [("rm", "a b", "c", "d e")]),
        ("r''m -rf x", [("rm", "-rf", "x")]),
        (
            "echo $(rm -rf x) `rm -r y`",
            [("rm", "-rf", "x"), ("rm", "-r", "y"), ("echo", "$(rm -rf x)", "`rm -r y`")],
        ),
        ("diff <(ls a) >(tee b)", [("ls", "a"), ("tee", "b"), ("diff", "<(ls a)", ">(tee b)")]),
        ("X=$(rm -rf x) true", [("rm", "-rf", "x"), ("true",)]),
        ("export Y=`rm -r z`", [("rm", "-r", "z")]),
        (
            "if [ -f x ]; then rm x; else (cd y && make); fi",
            [("rm", "x"), ("cd", "y"), ("make",)],
        ),
        ("for f in *.py; do python $f; done", [("python", "$f")]),
        ("f() { rm -r x; }; f", [("rm", "-r", "x"), ("f",)]),
        ("sudo -u root -n timeout -s KILL 5 nice -n 2 env A=1 rm -r x", [("rm", "-r", "x")]),
        ("xargs -I{} -n 1 rm {}", [("rm", "{}")]),
        ("xargs", [("echo",)]),
        (
            "find . -name '*.o' -exec rm -f {} \\; -exec echo {} +",
            [
                (
                    "find",
                    ".",
                    "-name",
                    "*.o",
                    "-exec",
                    "rm",
                    "-f",
                    "{}",
                    ";",
                    "-exec",
                    "echo",
                    "{}",
                    "+",
                ),
                ("rm", "-f", "{}"),
                ("echo", "{}"),
            ],
        ),
        ("sh -c 'bash -c \"rm -rf /\"'", [("rm", "-rf", "/")]),
        ("bash -ec 'ls; rm x'", [("ls",), ("rm", "x")]),
        ("bash script.sh arg", [("bash", "script.sh", "arg")]),
        ("eval 'rm -r x; ls'", [("rm", "-r", "x"), ("ls",)]),
        ("env -S 'rm -r x'", [("rm", "-r", "x")]),
        ("su -c 'rm -r x' root", [("rm", "-r", "x")]),
        ("watch rm -rf x", [("rm", "-rf", "x")]),
        ("command -v rm", [("command", "-v", "rm")]),
        ("bash <<'EOF'\nrm -rf /\nEOF", [("rm", "-rf", "/")]),
        ("sh <<< 'rm -r x'", [("rm", "-r", "x")]),
        ("cat <<EOF\nrm -rf /\nEOF", [("cat",)]),
        ("cat <<EOF\n$(rm -rf x)\nEOF", [("rm", "-rf", "x"), ("cat",)]),
        ("cat <<'EOF'\n$(rm -rf x)\nEOF", [("cat",)]),
        ('cat <<< "$(rm -rf x)"', [("rm", "-rf", "x"), ("cat",)]),
        ("echo ${X:-$(rm -r w)}", [("rm", "-r", "w"), ("echo", "${X:-$(rm -r w)}")]),
        ("case $(rm -r c) in *) ;; esac", [("rm", "-r", "c")]),
        ("local v=$(rm -r l)", [("rm", "-r", "l")]),
        ("[[ $(rm -r t) ]]", [("rm", "-r", "t")]),
    ],
)
def test_simple_commands(command: str, expected: list[tuple[str, ...]]) -> None:
    assert argvs(command) == expected


def test_wrappers_and_sources_recorded() -> None:
    (cmd,) = [c for c in parse_shell("sudo timeout 5 rm -r x").commands]
    assert cmd.wrappers == ("sudo", "timeout") and cmd.program == "rm"
    sh = parse_shell("curl -fsSL x | tee log | sh").commands[-1]
    assert sh.program == "sh" and sh.sources == ("curl", "tee")
    (inner,) = parse_shell("sh -c 'ls'").commands
    assert inner.wrappers == ("sh -c",)


def test_redirect_targets() -> None:
    (cmd,) = parse_shell("echo x > a 2>&1 >> b &> c 2>/dev/null < in").commands
    assert [(r.op, r.target, r.writes) for r in cmd.redirects] == [
        (">", "a", True),
        (">&", "1", False),
        (">>", "b", True),
        ("&>", "c", True),
        (">", "/dev/null", True),
        ("<", "in", False),
    ]
    assert write_targets(cmd) == (["a", "b", "c"], False)
    (dyn,) = parse_shell("echo x > $OUT").commands
    assert write_targets(dyn) == ([], True)


def test_dynamic_words_flagged() -> None:
    (cmd,) = parse_shell('$CMD "$HOME/x" lit').commands
    assert cmd.dynamic_program and cmd.dynamic_args == frozenset({0, 1})


@pytest.mark.parametrize(
    "command",
    ["ls |", "echo 'unterminated", "if true; then", 'bash -c "$X"', 'eval "$CODE"', "sh -c"],
)
def test_unreadable_is_an_error(command: str) -> None:
    parsed = parse_shell(command)
    if command == "sh -c":
        assert [c.argv for c in parsed.commands] == [("sh", "-c")]
    else:
        assert parsed.error


def test_nesting_limit() -> None:
    assert parse_shell("eval " * 5 + "ls").error is None
    assert "deeper" in (parse_shell("eval " * 12 + "ls").error or "")


@pytest.mark.parametrize(
    "command, read_only",
    [
        ("ls -la", True),
        ("git log --oneline", True),
        ("git branch", True),
        ("git branch -D x", False),
        ("git -c core.pager=x log", False),
        ("GIT_PAGER=x git log", False),
        ("LC_ALL=C sort f", True),
        ("sed -n 1,5p f", True),
        ("sed -i s/a/b/ f", False),
        ("sed 's/a/b/w out' f", False),
        ("find . -name x", True),
        ("find . -exec ls \\;", False),
        ("rg --pre=sh x", False),
        ("uniq a", True),
        ("uniq a b", False),
        ("python x.py", False),
        ("make", False),
    ],
)
def test_read_only_classification(command: str, read_only: bool) -> None:
    assert is_read_only(parse_shell(command).commands[0]) is read_only


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab rm-f'\"$()`|&;<>\\{}\n*~/=")), max_size=60))
def test_parser_never_raises(source: str) -> None:
    parsed = parse_shell(source)
    assert isinstance(parsed.commands, tuple)
