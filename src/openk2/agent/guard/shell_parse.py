"""Shell command line -> every simple command it would run, for the policy engine.

A matcher that looks at the raw string misses `rm -fr`, `/bin/rm`, `sudo -n rm`, `x | sh` and
`$(rm -rf x)`. This module parses with tree-sitter-bash and flattens the tree into
`SimpleCommand`s: pipelines, lists, subshells, control flow, `$(...)`, backticks and process
substitution are walked; wrappers (`sudo`, `env`, `timeout`, `nice`, `xargs`, `find -exec`, ...)
are unwrapped so the command they run is checked; `sh -c '...'`, `eval '...'` and a heredoc fed
to a shell are parsed recursively. Anything the parser cannot read makes `ParsedShell.error` set,
and the policy then asks: an unreadable command is never allowed by default.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish"})
"""Programs that run their `-c` string, their heredoc or stdin as shell code."""

WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
"""Redirection operators that open their target for writing (`>&` only with a file target)."""

MAX_DEPTH = 8
"""Nested `sh -c` / `eval` levels parsed before the command counts as unreadable."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """One redirection: `op` as written, `target` the path (None when not a literal word)."""

    op: str
    target: str | None
    text: str

    @property
    def writes(self) -> bool:
        """True when the redirection opens a file for writing (not `2>&1`)."""
        if self.op not in WRITE_REDIRECTS:
            return False
        return not (self.op == ">&" and (self.target is None or self.target.isdigit()))


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """One command the shell would execute, after wrappers are peeled off.

    `argv` holds the words with quotes removed; a word that is not literal (holds `$X`,
    `$(...)`) keeps its source text and its index is in `dynamic_args`. `wrappers` lists what
    ran it (`("sudo", "timeout")`, `("xargs",)`, `("find -exec",)`, `("sh -c",)`); `sources`
    names the programs whose output feeds it (earlier pipeline stages, substitutions in its
    arguments), so `curl x | sh` is visible on the `sh` command.
    """

    argv: tuple[str, ...]
    text: str
    wrappers: tuple[str, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[str, ...] = ()
    dynamic_args: frozenset[int] = frozenset()
    sources: tuple[str, ...] = ()

    @property
    def program(self) -> str:
        """The command's name without its directory (`/bin/rm` -> `rm`); `` if none."""
        return os.path.basename(self.argv[0]) if self.argv else ""

    @property
    def dynamic_program(self) -> bool:
        """True when the program name itself is computed (`$CMD`, `$(...)`)."""
        return 0 in self.dynamic_args

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments after the program name."""
        return self.argv[1:]


@dataclass(frozen=True, slots=True)
class ParsedShell:
    """The result of `parse_shell`: every simple command, or why the line could not be read."""

    source: str
    commands: tuple[SimpleCommand, ...]
    error: str | None = None


@dataclass(slots=True)
class _Word:
    text: str
    literal: bool


@dataclass(slots=True)
class _Walk:
    """State of one parse: collected commands, the first error, the nesting depth."""

    src: bytes
    depth: int
    commands: list[SimpleCommand] = field(default_factory=list)
    error: str | None = None

    def fail(self, reason: str) -> None:
        self.error = self.error or reason


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bash.language()))


def parse_shell(source: str, *, _depth: int = 0) -> ParsedShell:
    """Parse a command line into the simple commands it would run (see the module docstring)."""
    if _depth > MAX_DEPTH:
        return ParsedShell(source, (), f"nested shell strings deeper than {MAX_DEPTH} levels")
    raw = source.encode()
    tree = _parser().parse(raw)
    walk = _Walk(raw, _depth)
    if tree.root_node.has_error:
        walk.fail("the command line does not parse as bash")
    _visit(tree.root_node, walk, ())
    return ParsedShell(source, tuple(walk.commands), walk.error)


def _text(node: Node, walk: _Walk) -> str:
    return walk.src[node.start_byte : node.end_byte].decode(errors="replace")


def _visit(node: Node, walk: _Walk, sources: tuple[str, ...]) -> None:
    """Walk any node, turning `command` nodes into SimpleCommands; pipelines pass sources on."""
    if node.type == "pipeline":
        _visit_pipeline(node, walk, sources)
    elif node.type == "command":
        _visit_command(node, walk, sources, ())
    elif node.type == "redirected_statement":
        _visit_redirected(node, walk, sources)
    else:
        for child in node.named_children:
            _visit(child, walk, sources)


def _visit_pipeline(node: Node, walk: _Walk, sources: tuple[str, ...]) -> None:
    upstream = sources
    for stage in node.named_children:
        before = len(walk.commands)
        _visit(stage, walk, upstream)
        upstream = upstream + tuple(c.program for c in walk.commands[before:])


def _visit_redirected(node: Node, walk: _Walk, sources: tuple[str, ...]) -> None:
    """`cmd > file`: the redirections belong to the command in the body."""
    body = node.child_by_field_name("body")
    redirects = tuple(_redirect(r, walk) for r in node.children_by_field_name("redirect"))
    for r in node.children_by_field_name("redirect"):
        _visit_redirect_inner(r, walk, sources)
    if body is None:
        walk.commands.append(SimpleCommand(argv=(), text=_text(node, walk), redirects=redirects))
        return
    if body.type == "command":
        stdin = _heredoc(node.children_by_field_name("redirect"), walk)
        _visit_command(body, walk, sources, redirects, heredoc=stdin)
        return
    before = len(walk.commands)
    _visit(body, walk, sources)
    if before == len(walk.commands) or redirects:
        # `{ a; b; } > f` or `while ...; done > f`: keep the redirections on a command of their own.
        walk.commands.append(SimpleCommand(argv=(), text=_text(node, walk), redirects=redirects))


def _visit_redirect_inner(node: Node, walk: _Walk, sources: tuple[str, ...]) -> None:
    """Substitutions inside a redirection target (`> $(rm -rf x)`) still run."""
    for child in node.named_children:
        if child.type not in ("heredoc_start", "heredoc_end"):
            _visit(child, walk, sources)


def _heredoc(redirects: list[Node], walk: _Walk) -> str | None:
    """The literal text fed on stdin by a heredoc or herestring, if any."""
    for r in redirects:
        if r.type == "heredoc_redirect":
            body = next((c for c in r.named_children if c.type == "heredoc_body"), None)
            if body is None:
                return ""
            if any(c.type != "heredoc_content" for c in body.named_children):
                return None
            return _text(body, walk)
        if r.type == "herestring_redirect" and r.named_children:
            word = _word(r.named_children[0], walk)
            return word.text if word.literal else None
    return None


def _redirect(node: Node, walk: _Walk) -> Redirect:
    if node.type != "file_redirect":
        return Redirect(op="<<", target=None, text=_text(node, walk))
    op = next((c.type for c in node.children if not c.is_named), ">")
    dest = node.child_by_field_name("destination")
    if dest is None:
        return Redirect(op=op, target=None, text=_text(node, walk))
    word = _word(dest, walk)
    return Redirect(op=op, target=word.text if word.literal else None, text=_text(node, walk))


@dataclass(slots=True)
class _Parts:
    """The pieces of one `command` node, gathered before it becomes a SimpleCommand."""

    words: list[_Word] = field(default_factory=list)
    assignments: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    inner_sources: list[str] = field(default_factory=list)


def _visit_command(
    node: Node,
    walk: _Walk,
    sources: tuple[str, ...],
    redirects: tuple[Redirect, ...],
    heredoc: str | None = None,
) -> None:
    """One `command` node -> SimpleCommands (itself, or what its wrappers run)."""
    parts = _Parts(redirects=list(redirects))
    for child in node.named_children:
        _add_part(child, walk, sources, parts)
    if heredoc is None:
        heredoc = _heredoc([c for c in node.named_children if c.type in _STDIN_FEEDS], walk)
    cmd = SimpleCommand(
        argv=tuple(w.text for w in parts.words),
        text=_text(node, walk),
        redirects=tuple(parts.redirects),
        assignments=tuple(parts.assignments),
        dynamic_args=frozenset(i for i, w in enumerate(parts.words) if not w.literal),
        sources=sources + tuple(parts.inner_sources),
    )
    from openk2.agent.guard.wrappers import expand  # local: wrappers parse nested shell strings

    for result in expand(cmd, heredoc, walk.depth):
        if isinstance(result, str):
            walk.fail(result)
        else:
            walk.commands.append(result)


def _add_part(child: Node, walk: _Walk, sources: tuple[str, ...], parts: _Parts) -> None:
    """Sort one child of a command node; commands in its substitutions are collected first."""
    before = len(walk.commands)
    kind = child.type
    if kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
        _visit_redirect_inner(child, walk, sources)
        parts.redirects.append(_redirect(child, walk))
    elif kind in ("command_name", "variable_assignment") or kind in _WORD_TYPES:
        _visit_substitutions(child, walk)
        if kind == "variable_assignment":
            parts.assignments.append(_text(child, walk))
        elif kind == "command_name":
            named = child.named_children
            parts.words.append(_word(named[0], walk) if named else _Word("", False))
        else:
            parts.words.append(_word(child, walk))
    parts.inner_sources += [c.program for c in walk.commands[before:]]


def _visit_substitutions(node: Node, walk: _Walk) -> None:
    """Collect commands from `$(...)`, backticks and `<(...)` anywhere under a word."""
    if node.type in ("command_substitution", "process_substitution"):
        _visit(node, walk, ())
        return
    for child in node.named_children:
        _visit_substitutions(child, walk)


_STDIN_FEEDS = ("heredoc_redirect", "herestring_redirect")

_WORD_TYPES = frozenset(
    {
        "word",
        "string",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "number",
        "brace_expression",
    }
)


def _word(node: Node, walk: _Walk) -> _Word:
    """One shell word with its quotes removed; `literal` is False if it holds an expansion."""
    kind = node.type
    if kind in ("word", "number", "brace_expression"):
        return _Word(_unescape(_text(node, walk)), True)
    if kind == "raw_string":
        return _Word(_text(node, walk)[1:-1], True)
    if kind == "ansi_c_string":
        return _Word(_ansi_c(_text(node, walk)[2:-1]), True)
    if kind in ("string", "translated_string"):
        return _string(node, walk)
    if kind == "concatenation":
        parts = [_word(c, walk) for c in node.named_children]
        return _Word("".join(p.text for p in parts), all(p.literal for p in parts))
    return _Word(_text(node, walk), False)


def _string(node: Node, walk: _Walk) -> _Word:
    """A double-quoted string: literal only if it holds nothing but text."""
    inner = [c for c in node.named_children]
    if all(c.type == "string_content" for c in inner):
        raw = _text(node, walk)
        body = raw[raw.index('"') + 1 : -1]
        for esc in ('\\"', "\\\\", "\\$", "\\`"):
            body = body.replace(esc, esc[1])
        return _Word(body, True)
    return _Word(_text(node, walk).strip('"'), False)


def _unescape(text: str) -> str:
    """Drop shell backslash escapes from an unquoted word (`\\rm` -> `rm`, `\\;` -> `;`)."""
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        out.append(next(chars, "") if ch == "\\" else ch)
    return "".join(out)


def _ansi_c(body: str) -> str:
    try:
        return codecs.decode(body, "unicode_escape")
    except UnicodeDecodeError:
        return body


def with_wrapper(
    cmd: SimpleCommand, wrapper: str, argv: tuple[str, ...], dyn: frozenset[int]
) -> SimpleCommand:
    """`cmd` re-targeted at the command its wrapper runs (argv shifted, wrapper recorded)."""
    return replace(cmd, argv=argv, wrappers=cmd.wrappers + (wrapper,), dynamic_args=dyn)
