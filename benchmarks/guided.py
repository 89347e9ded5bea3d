"""Structured-output cost: per-token grammar mask time (llguidance vs xgrammar) and the end-to-end
per-token overhead of constrained vs unconstrained decoding on the embedded model.

    .venv/bin/python benchmarks/guided.py [--big-vocab 163584] [--decode-tokens 64] [--repeats 3]

Mask part: for each schema, one schema-valid compact JSON text is tokenized and walked token by
token; every step consumes the token, then computes the next-token bitmask (the work a server
does per generated token). Figures are CPU microseconds per token, least of `--repeats` walks
after a warm-up walk, one thread; compile = schema to first mask (llguidance compiles lazily,
so its first mask is part of it). Vocabularies: the bundled 8192-id tokenizer, and a K2-sized one
(163584 ranks + 256 specials) built here cheaply from the most frequent K2-pattern pieces of the
Python stdlib, so that the token trie has the size and shape of a real BPE vocabulary.

Decode part: the embedded model generates `--decode-tokens` tokens greedily (stop tokens banned)
through `LLMEngine` at batch 1 and 8, free and under a grammar: "any token" (text or special),
which leaves the greedy tokens unchanged (so the forward passes are identical and only the
grammar work differs), a JSON object with one long string, and a forced K2 tool call with a long
string argument (those two change the tokens, so the forward work differs a little too). The
ratio is guided / free CPU time per token, least of `--repeats` interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sysconfig
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import regex
import torch

from openk2.tokenizer import Tokenizer, default_tokenizer
from openk2.tokenizer.corpus import stdlib_texts
from openk2.tokenizer.pattern import K2_PAT_STR

SCHEMAS: dict[str, tuple[dict[str, Any], Any]] = {
    "flat object": (
        {"type": "object", "additionalProperties": False,
         "required": ["city", "days", "unit"],
         "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1},
                        "unit": {"enum": ["celsius", "fahrenheit"]}}},
        {"city": "San Francisco, California", "days": 12, "unit": "celsius"},
    ),
    "nested + arrays": (
        {"type": "object", "required": ["user", "items"],
         "properties": {
             "user": {"type": "object", "required": ["name", "age"],
                      "properties": {"name": {"type": "string", "minLength": 3},
                                     "age": {"type": "integer", "maximum": 150}}},
             "items": {"type": "array", "minItems": 8,
                       "items": {"anyOf": [{"type": "number"}, {"type": "string"}]}}}},
        {"user": {"name": "Ada Lovelace", "age": 36},
         "items": [1.5, "two", 3, "four", 5e3, "six", -7, "eight", 9.25]},
    ),
    "long string + pattern": (
        {"type": "object", "required": ["id", "text"],
         "properties": {"id": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                        "text": {"type": "string", "minLength": 200}}},
        {"id": "ABC-1234", "text": "The quick brown fox jumps over the lazy dog. " * 6},
    ),
}  # fmt: skip


def cpu_flags() -> str:
    """The SIMD flags that decide which kernels torch and the grammar libraries can use."""
    out = subprocess.run(
        ["grep", "-o", "-w", r"avx2\|avx512f\|avx512_bf16\|amx_tile", "/proc/cpuinfo"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return " ".join(sorted(set(out))) or "(none of avx2/avx512f/avx512_bf16/amx_tile)"


def k2_sized_tokenizer(num_ranks: int) -> Tokenizer:
    """256 single bytes + the most frequent substrings of the stdlib's K2-pattern pieces.

    BPE vocabularies are frequent substrings of pre-tokenized pieces; taking them by count
    (weighted by the piece's frequency, 2 to 16 bytes) gives a trie of the real size and shape
    without running a BPE trainer on the 2-core build machine.
    """
    pattern = regex.compile(K2_PAT_STR)
    pieces: Counter[bytes] = Counter()
    for text in corpus_texts():
        pieces.update(piece.encode("utf-8") for piece in pattern.findall(text))
    counts: Counter[bytes] = Counter()
    for piece, n in pieces.items():
        for start in range(len(piece)):
            for end in range(start + 2, min(len(piece), start + 16) + 1):
                counts[piece[start:end]] += n
    ranks = {bytes([b]): b for b in range(256)}
    for piece, _ in counts.most_common(num_ranks):
        if len(ranks) == num_ranks:
            break
        ranks.setdefault(piece, len(ranks))
    return Tokenizer(ranks, name="k2-sized")


def corpus_texts() -> Iterator[str]:
    """The stdlib, then the installed packages' Python sources (torch, transformers, ...)."""
    yield from stdlib_texts(40_000_000)
    root = Path(sysconfig.get_paths()["purelib"])
    total = 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        total += len(text)
        yield text
        if total > 60_000_000:
            return


# ---- mask cost ------------------------------------------------------------------------------


Walk = Callable[[dict[str, Any], list[int]], tuple[float, float]]
"""(schema, token ids) -> (compile seconds, walk seconds), both in CPU time."""


def walk_llguidance(tok: Tokenizer) -> Walk:
    import llguidance as llg
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask
    from llguidance.tiktoken import lltokenizer_from_encoding

    lltok = lltokenizer_from_encoding(tok.encoding, n_vocab=tok.vocab_size, eos_token=tok.im_end_id)
    mask = allocate_token_bitmask(1, tok.vocab_size)

    def walk(schema: dict[str, Any], ids: list[int]) -> tuple[float, float]:
        start = time.process_time()
        grammar = llg.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False}
        )
        matcher = llg.LLMatcher(lltok, grammar)
        fill_next_token_bitmask(matcher, mask)  # the first mask finishes the lazy compile
        compiled = time.process_time()
        for token in ids:
            if not matcher.consume_token(token):
                raise AssertionError(matcher.get_error())
            fill_next_token_bitmask(matcher, mask)
        return compiled - start, time.process_time() - compiled

    return walk


def walk_xgrammar(tok: Tokenizer) -> Walk:
    import xgrammar as xgr

    vocab = [tok.token_bytes(i) for i in range(tok.vocab_size)]
    info = xgr.TokenizerInfo(vocab, vocab_size=tok.vocab_size, stop_token_ids=[tok.im_end_id])
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    mask = xgr.allocate_token_bitmask(1, tok.vocab_size)

    def walk(schema: dict[str, Any], ids: list[int]) -> tuple[float, float]:
        start = time.process_time()
        grammar = compiler.compile_json_schema(schema, any_whitespace=False, separators=(",", ":"))
        matcher = xgr.GrammarMatcher(grammar)
        matcher.fill_next_token_bitmask(mask)
        compiled = time.process_time()
        for token in ids:
            if not matcher.accept_token(token):
                raise AssertionError(f"xgrammar rejected token {token}")
            matcher.fill_next_token_bitmask(mask)
        return compiled - start, time.process_time() - compiled

    return walk


def mask_table(tok: Tokenizer, repeats: int) -> None:
    walkers = {"llguidance": walk_llguidance(tok), "xgrammar": walk_xgrammar(tok)}
    print(f"\nvocab {tok.vocab_size}: CPU microseconds per token (consume + next mask) and "
          f"compile ms, least of {repeats}")  # fmt: skip
    print(f"{'schema':24} {'tokens':>6} {'llg us/tok':>11} {'xgr us/tok':>11} "
          f"{'llg compile':>12} {'xgr compile':>12}")  # fmt: skip
    for name, (schema, value) in SCHEMAS.items():
        ids = tok.encode(json.dumps(value, separators=(",", ":")))
        per_token, compile_ms = [], []
        for walk in walkers.values():
            runs = [walk(schema, ids) for _ in range(repeats + 1)][1:]
            per_token.append(min(w for _, w in runs) / len(ids) * 1e6)
            compile_ms.append(min(c for c, _ in runs) * 1e3)
        print(f"{name:24} {len(ids):6d} {per_token[0]:11.1f} {per_token[1]:11.1f} "
              f"{compile_ms[0]:12.1f} {compile_ms[1]:12.1f}")  # fmt: skip


# ---- end-to-end decode ----------------------------------------------------------------------


def decode_overhead(new_tokens: int, repeats: int) -> None:
    from openk2.embedded import model_dir
    from openk2.engine import EngineConfig, LLMEngine, SamplingParams
    from openk2.engine.grammar import GrammarCompiler
    from openk2.serve.launch import ServeConfig, load_model_and_tokenizer
    from openk2.serve.tool_choice import ToolSpec, tool_call_grammar
    from openk2.tokenizer.chat import encode_chat

    model, tok, _ = load_model_and_tokenizer(ServeConfig(model=str(model_dir())))
    engine = LLMEngine(model, tok, EngineConfig(max_num_seqs=8, num_blocks=512))
    compiler = GrammarCompiler(tok, engine.vocab_size)
    long_text = {"type": "string", "minLength": 100 * new_tokens}
    args = {"type": "object", "required": ["expression"], "properties": {"expression": long_text}}
    specials = f"<[{tok.num_ranks}-{engine.vocab_size - 1}]>"
    grammars = {  # "any token" keeps the free run's tokens, so only the grammar work differs
        "any token": compiler.compile(f"start: (TEXT | {specials})*\nTEXT: /(?s:.+)/"),
        "JSON string": compiler.json_schema({"type": "object", "required": ["text"],
                                             "properties": {"text": long_text}}),
        "tool call": compiler.compile(
            tool_call_grammar([ToolSpec("calculator", args)], 0, 1, None)
        ),
    }  # fmt: skip
    messages = [{"role": "user", "content": "Write a long story about a city."}]
    prompt = encode_chat(tok, messages, None, thinking=False, preserve_thinking=False)
    no_stop = {"temperature": 0.0, "max_tokens": new_tokens, "banned_token_ids": tok.stop_ids}
    print(f"\nembedded model, {new_tokens} greedy tokens per sequence, CPU ms per token, "
          f"least of {repeats} interleaved runs")  # fmt: skip
    print(f"{'batch':>5} {'grammar':>12} {'free':>7} {'guided':>7} {'ratio':>7}  same tokens")
    for batch in (1, 8):
        for name, grammar in grammars.items():
            free = SamplingParams(**no_stop)
            guided = SamplingParams(**no_stop, guide_factory=grammar.matcher)
            (t_free, out_free), (t_guided, out_guided) = _interleaved(
                engine, [prompt] * batch, [free, guided], repeats
            )
            per_token = [t / (new_tokens * batch) * 1e3 for t in (t_free, t_guided)]
            same = out_free == out_guided
            print(f"{batch:5d} {name:>12} {per_token[0]:7.3f} {per_token[1]:7.3f} "
                  f"{per_token[1] / per_token[0]:6.3f}x  {same}")  # fmt: skip


def _interleaved(
    engine: Any, prompts: list[list[int]], params: list[Any], repeats: int
) -> list[tuple[float, list[list[int]]]]:
    """Least CPU time per setting and its output token ids; runs alternate between settings so
    load from other jobs hits every setting alike (the first round is a warm-up)."""
    best = [float("inf")] * len(params)
    outs: list[list[list[int]]] = [[] for _ in params]
    for round_ in range(repeats + 1):
        for i, p in enumerate(params):
            start = time.process_time()
            result = engine.generate(prompts, p)
            elapsed = time.process_time() - start
            outs[i] = [r[0].token_ids for r in result]
            if round_:
                best[i] = min(best[i], elapsed)
    return list(zip(best, outs, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-vocab", type=int, default=163_584, help="BPE ranks; 0 = skip")
    parser.add_argument("--decode-tokens", type=int, default=64, help="0 = skip the decode part")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"CPU flags: {cpu_flags()}; torch threads: {torch.get_num_threads()}")
    mask_table(default_tokenizer(), args.repeats)
    if args.big_vocab:
        mask_table(k2_sized_tokenizer(args.big_vocab), args.repeats)
    if args.decode_tokens:
        decode_overhead(args.decode_tokens, args.repeats)


if __name__ == "__main__":
    main()
