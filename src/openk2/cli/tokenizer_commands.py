"""`openk2 tokenize`, `openk2 chat-template` and `openk2 train-tokenizer`: prompt debugging and
vocabulary training. The tokenizer package is imported inside each command to keep `--help` fast.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openk2.cli import app

if TYPE_CHECKING:
    from openk2.tokenizer import Tokenizer

TokenizerOption = Annotated[Path | None, typer.Option(
    "--tokenizer", help="Directory with tiktoken.model (or the file); default: the bundled "
    "8192-id vocabulary.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _load_tokenizer(path: Path | None) -> Tokenizer:
    """--tokenizer, else the bundled vocabulary (the shared rule, with no model directory)."""
    from openk2.tokenizer import load_tokenizer

    try:
        return load_tokenizer(None, path)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from e


@app.command()
def tokenize(
    text: Annotated[str, typer.Argument(help="Text to encode.")],
    tokenizer: TokenizerOption = None,
    no_special: Annotated[bool, typer.Option(
        "--no-special", help="Encode special-token strings as plain text.")] = False,
    pieces: Annotated[bool, typer.Option(
        "--pieces", help="Print one 'id<TAB>text' line per token.")] = False,
) -> None:
    """Print the token ids of TEXT (a JSON list), or each token with its text."""
    tok = _load_tokenizer(tokenizer)
    ids = tok.encode(text, allow_special=not no_special)
    if not pieces:
        typer.echo(json.dumps(ids))
        return
    for token_id in ids:
        raw = tok.token_bytes(token_id)
        try:
            piece: str | bytes = raw.decode("utf-8")
        except UnicodeDecodeError:
            piece = raw  # part of a multi-byte character: show the bytes
        typer.echo(f"{token_id}\t{piece!r}")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(f"cannot read {what} file {path}: {e}") from e


def _messages_and_tools(messages_file: Path, tools_file: Path | None) -> tuple[Any, Any]:
    """A list of messages, or an OpenAI request body with `messages` (and maybe `tools`)."""
    data = _read_json(messages_file, "messages")
    tools = None
    if isinstance(data, dict):
        tools = data.get("tools")
        data = data.get("messages")
    if not isinstance(data, list):
        raise _fail(f"{messages_file} must hold a list of messages or an object with 'messages'")
    if tools_file is not None:
        tools = _read_json(tools_file, "tools")
    return data, tools


@app.command("chat-template")
def chat_template(
    messages: Annotated[Path, typer.Option(
        "--messages", help="JSON list of OpenAI-style messages "
        "(or a request body with 'messages' and 'tools').")],
    tools: Annotated[Path | None, typer.Option(
        "--tools", help="JSON list of OpenAI-style tools.")] = None,
    instant: Annotated[bool, typer.Option(
        "--instant", help="Instant mode (thinking=false).")] = False,
    preserve_thinking: Annotated[bool, typer.Option(
        "--preserve-thinking", help="Keep every assistant turn's reasoning (K2.6).")] = False,
    no_generation_prompt: Annotated[bool, typer.Option(
        "--no-generation-prompt", help="Do not append the assistant prompt.")] = False,
    ids: Annotated[bool, typer.Option("--ids", help="Print token ids instead of text.")] = False,
    tokenizer: TokenizerOption = None,
) -> None:
    """Render a conversation with the exact K2.6 chat template."""
    from openk2.tokenizer.chat import MessageFormatError, render_chat

    message_list, tool_list = _messages_and_tools(messages, tools)
    try:
        text = render_chat(message_list, tool_list, thinking=not instant,
                           preserve_thinking=preserve_thinking,
                           add_generation_prompt=not no_generation_prompt)
    except MessageFormatError as e:
        raise _fail(str(e)) from e
    if ids:
        typer.echo(json.dumps(_load_tokenizer(tokenizer).encode(text)))
    else:
        typer.echo(text)


@app.command("train-tokenizer")
def train_tokenizer_command(
    out: Annotated[Path, typer.Option(
        "--out", help="Output directory (tiktoken.model + tokenizer_config.json).")],
    files: Annotated[list[Path] | None, typer.Argument(
        help="Corpus files or directories.")] = None,
    corpus: Annotated[list[Path] | None, typer.Option(
        "--corpus", help="Corpus file or directory (repeatable; directories are read "
        "recursively).")] = None,
    vocab_size: Annotated[int, typer.Option(
        "--vocab-size", help="Model vocabulary: BPE ranks + 256 reserved specials.")] = 8192,
    stdlib: Annotated[bool, typer.Option(
        "--stdlib", help="Add the offline Python-stdlib corpus (the bundled vocabulary's "
        "training text).")] = False,
    stdlib_chars: Annotated[int, typer.Option(
        "--stdlib-chars", help="Characters of stdlib text to use with --stdlib.")] = 12_000_000,
) -> None:
    """Train a byte-level BPE vocabulary in the Kimi tiktoken format."""
    from openk2.tokenizer.corpus import CorpusError, expand_paths, read_texts, stdlib_texts
    from openk2.tokenizer.train import TrainingError, train_tokenizer

    paths = [*(files or []), *(corpus or [])]
    if not paths and not stdlib:
        raise _fail("give corpus files (or --corpus PATH), or --stdlib")
    try:
        texts = read_texts(expand_paths(paths)) if paths else iter(())
        extra = stdlib_texts(stdlib_chars) if stdlib else iter(())
        result = train_tokenizer(itertools.chain(texts, extra), vocab_size, out)
    except (CorpusError, TrainingError, OSError) as e:
        raise _fail(str(e)) from e
    typer.echo(f"wrote {result.num_ranks} BPE ranks + 256 specials (vocab {result.vocab_size}) "
               f"from {result.corpus_chars:,} characters to {result.out_dir}")
