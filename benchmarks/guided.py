"""Structured-output cost: per-token grammar mask time (llguidance vs xgrammar) and the end-to-end
per-token overhead of constrained vs unconstrained decoding on the embedded model.

    .venv/bin/python benchmarks/guided.py [--big-vocab 163584] [--decode-tokens 64] [--repeats 3]

Mask part: for each schema, one schema-valid compact JSON text is tokenized and walked token by
token; every step computes the next-token bitmask, then consumes the token (the work a server
does per generated token). Figures are microseconds per token, best of `--repeats` walks, one
thread, after one warm-up walk. Vocabularies: the bundled 8192-id tokenizer, and a K2-sized one
(163584 ranks + 256 specials) built here cheaply from the most frequent K2-pattern pieces of the
Python stdlib, so that the token trie has the size and shape of a real BPE vocabulary.

Decode part: the embedded model generates `--decode-tokens` tokens greedily, with `ignore_eos`,
once free and once under a JSON schema that never lets the reply end early (a long string),
through `LLMEngine` with batch 1 and batch 8; the ratio is constrained / free CPU time per
token (least of `--repeats` interleaved runs; CPU time keeps the ratio stable on a shared box).
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


def walk_llguidance(tok: Tokenizer) -> Callable[[dict[str, Any], list[int]], float]:
    import llguidance as llg
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask
    from llguidance.tiktoken import lltokenizer_from_encoding

    lltok = lltokenizer_from_encoding(tok.encoding, n_vocab=tok.vocab_size, eos_token=tok.im_end_id)
    mask = allocate_token_bitmask(1, tok.vocab_size)

    def walk(schema: dict[str, Any], ids: list[int]) -> float:
        grammar = llg.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False}
        )
        matcher = llg.LLMatcher(lltok, grammar)
        start = time.perf_counter()
        for token in ids:
            fill_next_token_bitmask(matcher, mask)
            if not matcher.consume_token(token):
                raise AssertionError(matcher.get_error())
        fill_next_token_bitmask(matcher, mask)
        return time.perf_counter() - start

    return walk


def walk_xgrammar(tok: Tokenizer) -> Callable[[dict[str, Any], list[int]], float]:
    import xgrammar as xgr

    vocab = [tok.token_bytes(i) for i in range(tok.vocab_size)]
    info = xgr.TokenizerInfo(vocab, vocab_size=tok.vocab_size, stop_token_ids=[tok.im_end_id])
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    mask = xgr.allocate_token_bitmask(1, tok.vocab_size)

    def walk(schema: dict[str, Any], ids: list[int]) -> float:
        compiled = compiler.compile_json_schema(schema, any_whitespace=False, separators=(",", ":"))
        matcher = xgr.GrammarMatcher(compiled)
        start = time.perf_counter()
        for token in ids:
            matcher.fill_next_token_bitmask(mask)
            if not matcher.accept_token(token):
                raise AssertionError(f"xgrammar rejected token {token}")
        matcher.fill_next_token_bitmask(mask)
        return time.perf_counter() - start

    return walk


def compile_time(tok: Tokenizer, lib: str, schema: dict[str, Any]) -> float:
    """Seconds from schema to a matcher that can produce its first mask."""
    start = time.perf_counter()
    if lib == "llguidance":
        walk_llguidance(tok)(schema, [])
    else:
        walk_xgrammar(tok)(schema, [])
    return time.perf_counter() - start


def mask_table(tok: Tokenizer, repeats: int) -> None:
    walkers = {"llguidance": walk_llguidance(tok), "xgrammar": walk_xgrammar(tok)}
    print(f"\nvocab {tok.vocab_size}: microseconds per token (mask + consume), best of {repeats}")
    print(f"{'schema':24} {'tokens':>6} {'llguidance':>11} {'xgrammar':>9}")
    for name, (schema, value) in SCHEMAS.items():
        ids = tok.encode(json.dumps(value, separators=(",", ":")))
        cells = []
        for walk in walkers.values():
            walk(schema, ids)
            best = min(walk(schema, ids) for _ in range(repeats))
            cells.append(best / (len(ids) + 1) * 1e6)
        print(f"{name:24} {len(ids):6d} {cells[0]:11.1f} {cells[1]:9.1f}")


# ---- end-to-end decode ----------------------------------------------------------------------


def decode_overhead(new_tokens: int, repeats: int) -> None:
    from openk2.embedded import model_dir
    from openk2.engine import EngineConfig, LLMEngine, SamplingParams
    from openk2.engine.grammar import GrammarCompiler
    from openk2.serve.launch import ServeConfig, load_model_and_tokenizer

    model, tok, _ = load_model_and_tokenizer(ServeConfig(model=str(model_dir())))
    engine = LLMEngine(model, tok, EngineConfig(max_num_seqs=8, num_blocks=512))
    compiler = GrammarCompiler(tok)
    long_text = {"type": "string", "minLength": 100 * new_tokens}
    schema = {"type": "object", "required": ["text"], "properties": {"text": long_text}}
    grammar = compiler.json_schema(schema)
    prompt = tok.encode("<|im_user|>user<|im_middle|>Write JSON.<|im_end|><|im_assistant|>")
    print(f"\nembedded model, {new_tokens} greedy tokens per sequence, best of {repeats}")
    print(f"{'batch':>5} {'free ms/tok':>12} {'guided ms/tok':>14} {'ratio':>6}  (CPU time)")
    for batch in (1, 8):
        runs = {
            name: SamplingParams(
                temperature=0.0, max_tokens=new_tokens, ignore_eos=True, guide_factory=guide
            )
            for name, guide in (("free", None), ("guided", grammar.matcher))
        }
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(repeats + 1):  # interleaved, so load from other jobs hits both alike
            for name, params in runs.items():
                start = time.process_time()
                engine.generate([prompt] * batch, params)
                best[name] = min(best[name], time.process_time() - start)
        free, guided = (best[k] / (new_tokens * batch) * 1e3 for k in ("free", "guided"))
        print(f"{batch:5d} {free:12.3f} {guided:14.3f} {guided / free:6.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-vocab", type=int, default=163_584, help="BPE ranks; 0 = skip")
    parser.add_argument("--decode-tokens", type=int, default=64, help="0 = skip the decode part")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"CPU flags: {cpu_flags()}; torch threads: {torch.get_num_threads()}")
    small = default_tokenizer()
    mask_table(small, args.repeats)
    schema = SCHEMAS["nested + arrays"][0]
    for lib in ("llguidance", "xgrammar"):
        print(
            f"compile ({lib}, vocab {small.vocab_size}): "
            f"{compile_time(small, lib, schema) * 1e3:.1f} ms incl. tokenizer setup"
        )
    if args.big_vocab:
        big = k2_sized_tokenizer(args.big_vocab)
        mask_table(big, args.repeats)
        for lib in ("llguidance", "xgrammar"):
            print(
                f"compile ({lib}, vocab {big.vocab_size}): "
                f"{compile_time(big, lib, schema) * 1e3:.1f} ms incl. tokenizer setup"
            )
    if args.decode_tokens:
        decode_overhead(args.decode_tokens, args.repeats)


if __name__ == "__main__":
    main()
