"""Grammars for structured outputs, on llguidance (the engine behind vLLM's `guidance` backend).

A `GrammarCompiler` turns Lark text (with `%json {...}` for JSON Schema and `<|name|>` for special
tokens, e.g. K2's tool-call markers) into a validated `Grammar`, once per distinct text (LRU
cache), so a server can reject a bad schema with a 400 before any engine work. Each sequence then
gets its own `GrammarMatcher`, a cheap copy of the grammar's pristine matcher, which writes the
next-token bitmask for the sampler and consumes the sampled token.

llguidance was picked over xgrammar on measured mask cost (`benchmarks/guided.py`): on a
K2-sized 164k vocabulary it is 3-19x cheaper per token and compiles 20-40x faster (lazily, with
no per-vocabulary precomputation), and its Lark dialect names special tokens directly.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from threading import Lock
from typing import Any, Protocol

import llguidance as llg
import torch
from llguidance.gbnf_to_lark import any_to_lark
from llguidance.tiktoken import lltokenizer_from_encoding

log = logging.getLogger(__name__)

COMPACT_JSON: dict[str, Any] = {"whitespace_flexible": False}
"""JSON as `json.dumps(separators=(",", ":"))` writes it: no whitespace between tokens, so a
weak model cannot stall in an endless run of spaces."""
CACHE_SIZE = 256
"""Compiled grammars kept, keyed by their text (a server sees the same tool schemas again)."""


class GrammarError(ValueError):
    """The grammar or schema is invalid or uses something the engine cannot enforce."""


class TiktokenTokenizer(Protocol):
    """What the grammar engine needs: openk2's tiktoken encoding (token bytes + specials)."""

    @property
    def encoding(self) -> Any: ...

    @property
    def stop_ids(self) -> list[int]: ...


class GrammarMatcher:
    """One sequence's position in its grammar; the sampler's `TokenGuide`."""

    def __init__(self, matcher: llg.LLMatcher, stop_ids: list[int]) -> None:
        self._matcher = matcher
        self._stop_ids = stop_ids
        self.failed = False

    def fill_bitmask(self, bitmask_W: torch.Tensor) -> None:
        """Write the allowed next tokens into one contiguous int32 row (bit i = token i)."""
        if self.failed:  # let the sequence end instead of producing off-grammar text
            bitmask_W.zero_()
            for token in self._stop_ids:
                bitmask_W[token // 32] |= _bit(token % 32)
            return
        self._matcher.unsafe_compute_mask_ptr(
            bitmask_W.data_ptr(), bitmask_W.numel() * bitmask_W.element_size()
        )

    def advance(self, token_id: int) -> None:
        """Consume the sampled token; a rejected one (a logit-bias fallback) ends the guide."""
        if self.failed or self._matcher.is_stopped():
            return
        if not self._matcher.consume_token(token_id):
            log.warning("token %d broke the grammar: %s", token_id, self._matcher.get_error())
            self.failed = True

    @property
    def done(self) -> bool:
        """True once no more text may follow: the grammar ended, or a token broke it."""
        return self.failed or self._matcher.is_stopped()


def _bit(index: int) -> int:
    """Bit `index` of an int32 word, as the signed value torch stores."""
    return -(1 << 31) if index == 31 else 1 << index


class Grammar:
    """A validated grammar; `matcher` is the per-sequence `SamplingParams.guide_factory`."""

    def __init__(self, text: str, matcher: llg.LLMatcher, stop_ids: list[int]) -> None:
        self.text = text
        self._pristine = matcher
        self._stop_ids = stop_ids

    def matcher(self) -> GrammarMatcher:
        return GrammarMatcher(self._pristine.deep_copy(), self._stop_ids)


class GrammarCompiler:
    """Compiles and caches grammars for one tokenizer and model vocabulary."""

    def __init__(self, tokenizer: TiktokenTokenizer, vocab_size: int | None = None) -> None:
        self.stop_ids = [int(i) for i in tokenizer.stop_ids]
        self._tokenizer = lltokenizer_from_encoding(
            tokenizer.encoding, n_vocab=vocab_size, eos_token=self.stop_ids
        )
        self.vocab_size = self._tokenizer.vocab_size
        self._cache: OrderedDict[str, Grammar] = OrderedDict()
        self._lock = Lock()

    def compile(self, lark: str, nested: Mapping[str, str] | None = None) -> Grammar:
        """A grammar from Lark text; `nested` grammars (Lark or GBNF) are referenced as `@name`.

        Raises GrammarError with llguidance's reason when a grammar does not compile.
        """
        key = json.dumps([lark, dict(nested or {})], sort_keys=True)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        grammar = self._build(lark, nested or {})
        with self._lock:
            self._cache[key] = grammar
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return grammar

    def json_schema(self, schema: dict[str, Any], *, lenient: bool = False) -> Grammar:
        """One compact JSON value matching `schema` (see `json_rule`)."""
        return self.compile(f"start: {json_rule(schema, lenient=lenient)}")

    def _build(self, lark: str, nested: Mapping[str, str]) -> Grammar:
        grammars = [{"lark_grammar": lark}]
        for name, text in nested.items():
            grammars.append({"name": name, "lark_grammar": _to_lark(text)})
        matcher = llg.LLMatcher(self._tokenizer, json.dumps({"grammars": grammars}), log_level=0)
        if matcher.is_error():
            raise GrammarError(_reason(matcher.get_error()))
        return Grammar(lark, matcher, self.stop_ids)


def _to_lark(text: str) -> str:
    """Lark text as is; GBNF (llama.cpp's format, `::=` rules) converted to Lark."""
    try:
        return any_to_lark(text)
    except Exception as exc:  # the converter raises bare exceptions on malformed GBNF
        raise GrammarError(f"cannot read the grammar: {exc}") from exc


def json_rule(schema: dict[str, Any], *, lenient: bool = False) -> str:
    """A Lark `%json` rule body for `schema`, compact; `lenient` ignores unknown keywords.

    Raises GrammarError when the schema is not a JSON object.
    """
    if not isinstance(schema, dict):
        raise GrammarError(f"a JSON schema must be an object, got {type(schema).__name__}")
    options = {**COMPACT_JSON, "lenient": lenient}
    return "%json " + json.dumps({**schema, "x-guidance": options}, ensure_ascii=False)


def regex_terminal(pattern: str) -> str:
    """A Lark regex terminal `/.../` for `pattern` (slashes escaped)."""
    if not isinstance(pattern, str) or not pattern:
        raise GrammarError("a regex must be a non-empty string")
    return "/" + llg.regex_to_lark(pattern, "") + "/"


def string_literal(text: str) -> str:
    """A Lark string literal that matches `text` exactly."""
    return json.dumps(text, ensure_ascii=False)


def _reason(message: str) -> str:
    """llguidance's message on one line, without its position prefix, caret lines and the
    excerpt of the grammar it appends (`  1 | start: ...`)."""
    lines = []
    for line in message.strip().splitlines():
        if re.match(r"\s*\d+ \|", line):
            break
        if line.strip() and not re.fullmatch(r"\s*\^+\s*", line):
            lines.append(line.strip())
    text = " ".join(lines) or "invalid grammar"
    text = re.sub(r"^at \d+\(\d+\): ", "", text)
    return text.removeprefix("failed to compile JSON schema: ")
