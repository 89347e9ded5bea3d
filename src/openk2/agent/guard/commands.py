"""What well-known commands do: which only read, and which paths they write.

`auto` mode lets read-only commands run unasked, and the always-deny layer checks every path a
command writes against the writable roots; both need to know the command, so the knowledge is
kept here, as data, in one place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from openk2.agent.guard.shell_parse import SimpleCommand

READ_ONLY = frozenset(
    [
        "ls",
        "ll",
        "la",
        "cat",
        "head",
        "tail",
        "wc",
        "grep",
        "egrep",
        "fgrep",
        "rg",
        "ag",
        "ack",
        "pwd",
        "echo",
        "printf",
        "true",
        "false",
        "test",
        "[",
        "which",
        "type",
        "file",
        "stat",
        "du",
        "df",
        "tree",
        "sort",
        "uniq",
        "cut",
        "tr",
        "diff",
        "cmp",
        "comm",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "date",
        "cal",
        "whoami",
        "id",
        "hostname",
        "uname",
        "uptime",
        "ps",
        "printenv",
        "nl",
        "od",
        "xxd",
        "hexdump",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "sha512sum",
        "b2sum",
        "cksum",
        "jq",
        "yq",
        "column",
        "fold",
        "fmt",
        "expand",
        "unexpand",
        "rev",
        "tac",
        "paste",
        "join",
        "seq",
        "less",
        "more",
        "bat",
        "fd",
        "locate",
        "strings",
        "nproc",
        "free",
        "lscpu",
        "lsblk",
        "env",
        "sleep",
        "wait",
        # shell builtins that change nothing but the shell itself
        "cd",
        "pushd",
        "popd",
        "dirs",
        "set",
        ":",
        "hash",
        "help",
        "expr",
        "base64",
        "basenc",
        "getconf",
        "locale",
        "tput",
    ]
)
"""Programs that only read (with no wrapped command and no `-exec`)."""

GIT_READ_ONLY = frozenset(
    [
        "status",
        "log",
        "diff",
        "show",
        "blame",
        "grep",
        "ls-files",
        "ls-tree",
        "rev-parse",
        "describe",
        "shortlog",
        "reflog",
        "cat-file",
        "show-ref",
        "for-each-ref",
        "name-rev",
        "merge-base",
        "count-objects",
        "version",
        "help",
    ]
)
"""git subcommands that never change the repository or the work tree."""

GIT_GLOBAL_VALUE_OPTIONS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace"})

FIND_WRITES = frozenset(
    {"-delete", "-fprint", "-fprint0", "-fprintf", "-fls", "-exec", "-execdir", "-ok", "-okdir"}
)
SED_IN_PLACE = ("-i", "--in-place")

WRITES_OPERANDS = frozenset(
    [
        "rm",
        "rmdir",
        "unlink",
        "shred",
        "touch",
        "mkdir",
        "truncate",
        "chmod",
        "chown",
        "chgrp",
        "mv",
        "tee",
        "mkfifo",
        "mknod",
    ]
)
"""Programs that write (create, change or remove) every path operand they are given."""

WRITES_LAST_OPERAND = frozenset({"cp", "ln", "install", "rsync", "scp"})
"""Programs that write only their last path operand (the destination)."""

_VALUE_OPTIONS = {
    "chmod": 1,
    "chown": 1,
    "chgrp": 1,
}
"""Programs whose first operand is not a path (the mode or the owner)."""


def git_argv(cmd: SimpleCommand) -> tuple[str, ...]:
    """git's arguments from the subcommand on, global options (`-C dir`, `-c k=v`) removed."""
    args = cmd.args
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in GIT_GLOBAL_VALUE_OPTIONS else 1
    return args[i:]


SAFE_ASSIGNMENTS = frozenset({"LANG", "LANGUAGE", "TZ", "COLUMNS", "LINES", "NO_COLOR", "TERM"})
"""Variables a read-only command may be given (`LC_ALL=C sort`); others (`GIT_PAGER=...`,
`LD_PRELOAD=...`) can make a "read-only" program run code."""

EXEC_OPTIONS: dict[str, tuple[str, ...]] = {
    "rg": ("--pre",),
    "sort": ("-o", "--output", "--compress-program"),
    "tree": ("-o",),
    "git": ("--output", "--ext-diff", "--textconv"),
    "less": ("-o", "--log-file", "-O", "--LOG-FILE"),
    "fd": ("-x", "--exec", "-X", "--exec-batch"),
    "date": ("-s", "--set"),
}
"""Options that turn a read-only program into one that writes files or runs commands."""

OUTPUT_OPERAND = {"uniq": 2, "xxd": 2, "hostname": 1}
"""Programs whose N-th operand (1-based) is written or set (`uniq in out`, `xxd in out`)."""

_SED_SAFE = re.compile(
    r"(?:\d+|\$|/[^/]*/)?(?:,(?:\d+|\$|/[^/]*/))?[pd]"  # 1,5p  /re/d  $p
    r"|s(.).*?\1.*?\1[gpiI0-9]*"  # s/a/b/g (no w, e flags)
    r"|[=q]"
)


def is_read_only(cmd: SimpleCommand) -> bool:
    """True when running `cmd` (ignoring its redirections) changes nothing and runs nothing."""
    prog = cmd.program
    if cmd.dynamic_program or not cmd.argv:
        return not cmd.argv
    if any(
        a.split("=", 1)[0] not in SAFE_ASSIGNMENTS and not a.startswith("LC_")
        for a in cmd.assignments
    ):
        return False
    if any(a.split("=", 1)[0] in EXEC_OPTIONS.get(prog, ()) for a in cmd.args):
        return False
    if prog in OUTPUT_OPERAND and len(path_operands(cmd)) >= OUTPUT_OPERAND[prog]:
        return False
    if prog == "git":
        return not _has_git_config(cmd) and _git_read_only(git_argv(cmd))
    if prog == "find":
        return not any(a in FIND_WRITES for a in cmd.args)
    if prog == "sed":
        return _sed_read_only(cmd)
    return prog in READ_ONLY


def _has_git_config(cmd: SimpleCommand) -> bool:
    """`git -c core.pager=... log` runs what the option says: not read-only."""
    return any(
        a == "-c" or a.startswith("--config-env")
        for a in cmd.args[: len(cmd.args) - len(git_argv(cmd))]
    )


def _sed_read_only(cmd: SimpleCommand) -> bool:
    """sed without `-i` whose script only prints, deletes or substitutes (no `w`/`e`/`r`)."""
    args = cmd.args
    if any(a.startswith(SED_IN_PLACE) or a.startswith("--expression=") for a in args):
        return False
    scripts = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-e", "--expression")]
    if not scripts:
        scripts = [a for a in path_operands(cmd)[:1]]
    if not scripts or any(i in cmd.dynamic_args for i in range(1, len(cmd.argv))):
        return False
    parts = [p.strip() for script in scripts for p in script.split(";") if p.strip()]
    return all(_SED_SAFE.fullmatch(p) for p in parts)


def _git_read_only(args: tuple[str, ...]) -> bool:
    if not args:
        return True
    sub, rest = args[0], args[1:]
    if sub in GIT_READ_ONLY:
        return True
    if sub == "branch":
        return all(a in ("-a", "-r", "-l", "--list", "-v", "-vv", "--all") for a in rest)
    if sub == "remote":
        return not rest or rest == ("-v",)
    if sub == "stash":
        return rest[:1] in (("list",), ("show",))
    if sub == "config":
        return bool(rest) and rest[0] in ("--get", "--list", "-l", "--get-all")
    return False


def path_operands(cmd: SimpleCommand) -> list[str]:
    """Literal operands of `cmd` that look like paths (options and computed words dropped)."""
    out: list[str] = []
    after_dashdash = False
    for i, word in enumerate(cmd.args, start=1):
        if word == "--" and not after_dashdash:
            after_dashdash = True
            continue
        if (word.startswith("-") and not after_dashdash) or i in cmd.dynamic_args:
            continue
        out.append(word)
    return out


def write_targets(cmd: SimpleCommand) -> tuple[list[str], bool]:
    """Paths `cmd` writes (redirections included) and whether some target is computed."""
    targets = [r.target for r in cmd.redirects if r.writes and r.target is not None]
    dynamic = any(r.writes and r.target is None for r in cmd.redirects)
    prog = cmd.program
    operands = path_operands(cmd)
    if prog in WRITES_OPERANDS:
        targets += operands[_VALUE_OPTIONS.get(prog, 0) :]
        dynamic = dynamic or bool(set(range(1, len(cmd.argv))) & cmd.dynamic_args)
    elif prog in WRITES_LAST_OPERAND and len(operands) >= 2:
        targets.append(operands[-1])
    elif prog == "dd":
        targets += [a[3:] for a in cmd.args if a.startswith("of=")]
    elif prog == "sed" and any(a.startswith(SED_IN_PLACE) for a in cmd.args):
        targets += operands[1:]
    elif prog in OUTPUT_OPERAND and len(operands) >= OUTPUT_OPERAND[prog]:
        targets.append(operands[OUTPUT_OPERAND[prog] - 1])
    elif prog == "git":
        targets += _git_targets(cmd)
    targets += _option_values(cmd, OUTPUT_OPTIONS.get(prog, ()))
    targets = [t for t in targets if t not in _HARMLESS_SINKS]
    return targets, dynamic


def _git_targets(cmd: SimpleCommand) -> list[str]:
    """`git -C DIR <changing subcommand>` writes DIR; `git clone URL DEST` writes DEST."""
    sub = git_argv(cmd)
    if _git_read_only(sub):
        return []
    head = cmd.args[: len(cmd.args) - len(sub)]
    out = [head[i + 1] for i, a in enumerate(head[:-1]) if a == "-C"]
    if sub[:1] == ("clone",):
        positional = [a for a in sub[1:] if not a.startswith("-")]
        out += positional[-1:] if len(positional) >= 2 else []
    return out


OUTPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "curl": ("-o", "--output"),
    "wget": ("-O", "--output-document", "-P", "--directory-prefix"),
    "sort": ("-o", "--output"),
    "tar": ("-C", "--directory"),
    "unzip": ("-d",),
    "tree": ("-o",),
    "git": ("--output",),
    "pip": ("-t", "--target"),
    "cp": ("-t", "--target-directory"),
    "mv": ("-t", "--target-directory"),
    "ln": ("-t", "--target-directory"),
    "install": ("-t", "--target-directory"),
}
"""Options whose value is a path the program writes (`curl -o ~/.bashrc`)."""


def _option_values(cmd: SimpleCommand, names: tuple[str, ...]) -> list[str]:
    values: list[str] = []
    args = cmd.args
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if key in names and eq:
            values.append(value)
        elif arg in names and i + 1 < len(args):
            values.append(args[i + 1])
        elif any(arg.startswith(n) and len(arg) > len(n) and not n.startswith("--") for n in names):
            values.append(arg[2:])
    return values


_HARMLESS_SINKS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "-"})


DELETES_OPERANDS = frozenset({"rm", "unlink", "shred", "truncate"})
"""Programs that throw away the content of every path operand (delete or truncate)."""

REPLACES_DESTINATION = frozenset({"cp", "mv", "install", "ln", "rsync"})
"""Programs that replace their destination (last operand; inside it when it is a directory)."""

REPLACING_REDIRECTS = frozenset({">", ">|", "&>"})
"""Redirections that truncate their target (`>>` appends, `<>` opens without truncating)."""

_OPERAND_VALUES = {"truncate": ("-s", "--size", "-r", "--reference")}
"""Options of a deleting program whose value is the next word, not a path operand."""


def destroy_targets(cmd: SimpleCommand, is_dir: Callable[[str], bool] = os.path.isdir) -> list[str]:
    """Paths whose current content `cmd` throws away: deleted, truncated or replaced whole.

    Edits in place (`sed -i`, a formatter) and appends are not listed: the file keeps what it
    had. A move keeps the content too, at its new path; only the path it lands on is replaced.
    `is_dir` says whether a destination word names a directory (from the command's cwd).
    """
    targets = [r.target for r in cmd.redirects if r.op in REPLACING_REDIRECTS and r.target]
    prog, operands = cmd.program, _operands_without_values(cmd)
    if prog in DELETES_OPERANDS:
        targets += operands
    elif prog in REPLACES_DESTINATION and len(operands) >= 2:
        targets += _destinations(operands, is_dir)
    elif prog == "tee" and not any(a in ("-a", "--append") for a in cmd.args):
        targets += operands
    elif prog == "git" and (sub := git_argv(cmd))[:1] == ("rm",) and _git_rm_destroys(sub):
        targets += [a for a in sub[1:] if not a.startswith("-")]
    return [t for t in targets if t not in _HARMLESS_SINKS]


def _operands_without_values(cmd: SimpleCommand) -> list[str]:
    names = _OPERAND_VALUES.get(cmd.program, ())
    skip = {i + 1 for i, a in enumerate(cmd.args) if a in names}
    values = {cmd.args[i] for i in skip if i < len(cmd.args)}
    return [o for o in path_operands(cmd) if o not in values]


def _destinations(operands: list[str], is_dir: Callable[[str], bool]) -> list[str]:
    """`cp a b dir/` replaces `dir/a` and `dir/b`; `cp a b` replaces `b`."""
    dest, sources = operands[-1], operands[:-1]
    if dest.endswith("/") or is_dir(dest):
        return [os.path.join(dest, os.path.basename(s.rstrip("/"))) for s in sources]
    return [dest]


def _git_rm_destroys(sub: tuple[str, ...]) -> bool:
    """`git rm -f` removes a file with uncommitted changes; plain `git rm` refuses to."""
    flags = [a for a in sub[1:] if a.startswith("-")]
    forced = any(a == "--force" or (not a.startswith("--") and "f" in a) for a in flags)
    return forced and "--cached" not in flags
