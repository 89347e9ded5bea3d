"""Peel command wrappers so the policy sees the command that really runs.

`sudo -n rm -rf x`, `env FOO=1 timeout 5 rm -r x`, `xargs rm`, `find / -exec rm {} \\;`,
`sh -c 'rm -rf /'`, `eval "rm -r x"` and `bash <<EOF ... EOF` all run `rm`. Each wrapper is
described by the options that take a value and the positional words it consumes before the
wrapped command; shell strings are parsed again (one level deeper) with `parse_shell`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from openk2.agent.guard.shell_parse import SHELLS, SimpleCommand, parse_shell, with_wrapper

Expanded = SimpleCommand | str
"""A command found inside a wrapper, or the reason it could not be read."""


@dataclass(frozen=True, slots=True)
class WrapperSpec:
    """How one wrapper program finds the command it runs."""

    value_options: frozenset[str] = frozenset()
    """Options whose value is the next word (`sudo -u USER`, `timeout -s SIG`)."""
    positionals: int = 0
    """Words consumed before the wrapped command (`timeout DURATION`, `flock FILE`)."""
    assignments: bool = False
    """Whether `NAME=value` words may precede the command (`env`, `sudo`)."""
    string_options: frozenset[str] = frozenset()
    """Options whose value is a shell string to parse (`su -c`, `flock -c`, `env -S`)."""


def _spec(
    values: str = "", positionals: int = 0, assignments: bool = False, strings: str = ""
) -> WrapperSpec:
    return WrapperSpec(
        frozenset(values.split()), positionals, assignments, frozenset(strings.split())
    )


WRAPPERS: dict[str, WrapperSpec] = {
    "sudo": _spec(
        "-u -g -C -D -p -r -t -U -T -h --user --group --chdir --prompt --role --type", 0, True
    ),
    "doas": _spec("-u -C"),
    "env": _spec("-u --unset -C --chdir", 0, True, "-S --split-string"),
    "nice": _spec("-n --adjustment"),
    "nohup": _spec(),
    "setsid": _spec(),
    "time": _spec("-f -o --format --output"),
    "timeout": _spec("-s -k --signal --kill-after", 1),
    "stdbuf": _spec("-i -o -e --input --output --error"),
    "ionice": _spec("-c -n --class --classdata"),
    "chrt": _spec("", 1),
    "taskset": _spec("", 1),
    "flock": _spec("-w -E --timeout --conflict-exit-code", 1, False, "-c --command"),
    "command": _spec(),
    "builtin": _spec(),
    "exec": _spec("-a"),
    "xargs": _spec("-I -n -P -L -l -d -E -e -s -a --max-args --max-procs --delimiter --arg-file"),
    "strace": _spec("-o -e -p -s -u -a -b -E -I -O -P -S -X"),
    "ltrace": _spec("-o -e -p -s -u -a -n"),
    "unbuffer": _spec(),
    "chroot": _spec("--userspec --groups", 1),
    "busybox": _spec(),
    "su": _spec("-s -g -G --shell --group", 0, False, "-c --command"),
    "runuser": _spec("-u -s -g -G --user --shell --group", 0, False, "-c --command"),
    "script": _spec("-E -O -T -I -B", 0, False, "-c --command"),
    "watch": _spec("-n -d --interval --differences"),
}
"""Programs that run another command given as their remaining words."""

JOINED_STRING_WRAPPERS = frozenset({"watch"})
"""Wrappers that join their remaining words into a shell string (`watch rm -rf x`)."""

FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def expand(cmd: SimpleCommand, heredoc: str | None, depth: int) -> list[Expanded]:
    """Every command `cmd` amounts to: itself, or what its wrappers / shell strings run."""
    out: list[Expanded] = []
    _expand(cmd, heredoc, depth, out)
    return out


def _expand(cmd: SimpleCommand, heredoc: str | None, depth: int, out: list[Expanded]) -> None:
    prog = cmd.program
    if not cmd.argv or cmd.dynamic_program:
        out.append(cmd)
    elif prog in SHELLS:
        _expand_shell(cmd, heredoc, depth, out)
    elif prog == "eval":
        _expand_string(cmd, " ".join(cmd.args), bool(cmd.dynamic_args), "eval", depth, out)
    elif prog == "find":
        _expand_find(cmd, depth, out)
    elif prog in WRAPPERS and not _is_lookup(cmd):
        _expand_wrapper(cmd, WRAPPERS[prog], heredoc, depth, out)
    else:
        out.append(cmd)


def _is_lookup(cmd: SimpleCommand) -> bool:
    """`command -v x` / `command -V x` only looks a name up; it runs nothing."""
    return cmd.program == "command" and any(a in ("-v", "-V") for a in cmd.args[:1])


def _expand_wrapper(
    cmd: SimpleCommand, spec: WrapperSpec, heredoc: str | None, depth: int, out: list[Expanded]
) -> None:
    i, string = _skip_options(cmd, spec)
    if string is not None:
        index, text = string
        _expand_string(cmd, text, index in cmd.dynamic_args, f"{cmd.program} -c", depth, out)
        return
    i += spec.positionals
    if i >= len(cmd.argv):
        if cmd.program == "xargs":
            out.append(with_wrapper(cmd, "xargs", ("echo",), frozenset()))
        else:
            out.append(cmd)
        return
    if cmd.program in JOINED_STRING_WRAPPERS:
        rest = " ".join(cmd.argv[i:])
        dynamic = any(j >= i for j in cmd.dynamic_args)
        _expand_string(cmd, rest, dynamic, cmd.program, depth, out)
        return
    dyn = frozenset(j - i for j in cmd.dynamic_args if j >= i)
    inner = with_wrapper(cmd, cmd.program, cmd.argv[i:], dyn)
    if spec.assignments:
        given = tuple(w for w in cmd.argv[1:i] if "=" in w and not w.startswith("-"))
        inner = replace(inner, assignments=cmd.assignments + given)
    _expand(inner, heredoc, depth, out)


def _skip_options(cmd: SimpleCommand, spec: WrapperSpec) -> tuple[int, tuple[int, str] | None]:
    """Index of the first word after the wrapper's options, or the shell string it was given."""
    i = 1
    argv = cmd.argv
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return i + 1, None
        if spec.assignments and "=" in word and not word.startswith("-"):
            i += 1
            continue
        if not word.startswith("-") or word == "-":
            return i, None
        name = word.split("=", 1)[0]
        if name in spec.string_options or (len(word) > 2 and word[:2] in spec.string_options):
            return _string_option(argv, i, name)
        takes_value = name in spec.value_options and "=" not in word
        i += 2 if takes_value else 1
    return i, None


def _string_option(argv: tuple[str, ...], i: int, name: str) -> tuple[int, tuple[int, str] | None]:
    word = argv[i]
    if "=" in word:
        return i, (i, word.split("=", 1)[1])
    if len(word) > 2 and not word.startswith("--"):
        return i, (i, word[2:])
    if i + 1 < len(argv):
        return i, (i + 1, argv[i + 1])
    return i, None


def _expand_shell(cmd: SimpleCommand, heredoc: str | None, depth: int, out: list[Expanded]) -> None:
    """`bash -c STRING`, `sh <<EOF ... EOF`; a script path or piped stdin stays as it is."""
    script = _shell_string(cmd)
    if script is not None:
        index, text = script
        _expand_string(cmd, text, index in cmd.dynamic_args, f"{cmd.program} -c", depth, out)
    elif heredoc is not None and not _has_script_operand(cmd):
        _expand_string(cmd, heredoc, False, f"{cmd.program} <<", depth, out)
    else:
        out.append(cmd)


def _shell_string(cmd: SimpleCommand) -> tuple[int, str] | None:
    """The `-c` string of a shell invocation and its argv index, if it has one."""
    want_string = False
    for i, word in enumerate(cmd.argv[1:], start=1):
        if want_string:
            return i, word
        if word.startswith("-") and not word.startswith("--") and "c" in word[1:]:
            want_string = True
        elif word in ("-o", "+o"):
            continue
        elif not word.startswith(("-", "+")):
            return None
    return None


def _has_script_operand(cmd: SimpleCommand) -> bool:
    return any(not a.startswith(("-", "+")) for a in cmd.args)


def _expand_string(
    cmd: SimpleCommand, text: str, dynamic: bool, wrapper: str, depth: int, out: list[Expanded]
) -> None:
    """Parse a shell string one level deeper; a computed string cannot be checked."""
    if cmd.redirects:
        out.append(replace(cmd, argv=(), dynamic_args=frozenset()))
    if dynamic:
        out.append(cmd)
        out.append(f"`{wrapper}` runs a computed string ({cmd.text!r}); it cannot be checked")
        return
    parsed = parse_shell(text, _depth=depth + 1)
    if parsed.error:
        out.append(f"`{wrapper}` string: {parsed.error}")
    for sub in parsed.commands:
        out.append(
            replace(
                sub,
                wrappers=cmd.wrappers + (wrapper,) + sub.wrappers,
                sources=cmd.sources + sub.sources,
            )
        )


def _expand_find(cmd: SimpleCommand, depth: int, out: list[Expanded]) -> None:
    """`find` itself (for `-delete`, `-fprint`) plus each `-exec`/`-ok` command it runs."""
    out.append(cmd)
    argv = cmd.argv
    i = 1
    while i < len(argv):
        if argv[i] not in FIND_EXEC:
            i += 1
            continue
        end = i + 1
        while end < len(argv) and argv[end] not in (";", "+"):
            end += 1
        if end > i + 1:
            dyn = frozenset(j - i - 1 for j in cmd.dynamic_args if i < j < end)
            sub = replace(cmd, argv=argv[i + 1 : end], dynamic_args=dyn, redirects=())
            _expand(replace(sub, wrappers=cmd.wrappers + ("find -exec",)), None, depth, out)
        i = end + 1
