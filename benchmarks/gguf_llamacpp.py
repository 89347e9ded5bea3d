"""llama.cpp on openk2's GGUF export: same tokens, same greedy continuations, relative speed.

Exports the embedded model (`openk2 convert --to gguf`) at each quant, loads each file with
llama.cpp through `llama-cpp-python` (its wheel builds llama.cpp from source), and compares
with openk2 on the same chat prompts:
- tokenizer: llama.cpp's tokenization of the rendered prompt (specials parsed) against openk2's;
- chat template: the GGUF's `tokenizer.chat_template` rendered by llama-cpp-python's Jinja
  formatter against openk2's renderer;
- greedy decoding: the tokens llama.cpp picks against openk2's (float32), as the share of
  prompts matching exactly and the mean matched prefix.
This is a correctness check, not a speed benchmark: it runs whatever build of llama.cpp is
installed (possibly unoptimised), so it reports no timings.

Run: `.venv/bin/python benchmarks/gguf_llamacpp.py [--new-tokens 32] [--quants f16,q8_0]`.
Needs `pip install llama-cpp-python` (compiles llama.cpp; ~15-30 min on 2 cores). Without it
the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from openk2.embedded import model_dir
from openk2.export.gguf import export_gguf
from openk2.model.generate import generate
from openk2.model.weights import load_model
from openk2.tokenizer.chat.template import render_chat
from openk2.tokenizer.tokenizer import Tokenizer

PROMPTS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "Write a Python function that reverses a string."}],
    [{"role": "user", "content": "List three primary colours."}],
    [{"role": "user", "content": "Hello! Who are you?"},
     {"role": "assistant", "content": "I am the openk2 embedded model."},
     {"role": "user", "content": "What can you do?"}],
]

TEXTS = ["The quick brown fox jumps over the lazy dog. ",
         "def fibonacci(n):\n    if n < 2:\n        return n\n",
         "中文分词测试：Kimi K2 模型 12345 tokens, naïve café — 🙂 ",
         "  leading spaces\ttabs\r\nCRLF and numbers 3.14159 2026"]
"""Raw continuations (no chat template, no stop tokens): always the full token count, and a
tokenizer test on Han, accents, emoji, digit runs and whitespace."""


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        sys.exit("llama-cpp-python is not installed: `pip install llama-cpp-python` builds "
                 "llama.cpp from source (or build ggml-org/llama.cpp with cmake and point "
                 "llama-cpp-python at it with LLAMA_CPP_LIB_PATH)")
    return llama_cpp


def _cases(tokenizer: Tokenizer) -> list[tuple[str, list[dict] | None, list[int]]]:
    """(text, chat messages or None, stop ids) for every prompt."""
    chats = [(render_chat(m), m, tokenizer.stop_ids) for m in PROMPTS]
    return chats + [(text, None, []) for text in TEXTS]


def _openk2_greedy(model, ids: list[int], n: int, stops: list[int]) -> list[int]:
    return generate(model, ids, max_new_tokens=n, temperature=0.0, stop_ids=stops or None)


def _llama_greedy(llm, ids: list[int], n: int, stops: list[int]) -> list[int]:
    out: list[int] = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(token)
        if token in stops or len(out) == n:
            break
    return out


def _prefix(a: list[int], b: list[int]) -> int:
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def _template_matches(llama_cpp, llm, messages) -> bool:
    template = llm.metadata["tokenizer.chat_template"]
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
        template=template, eos_token="[EOS]", bos_token="[BOS]")
    rendered = formatter(messages=messages).prompt
    return rendered == render_chat(messages)


def _run_quant(llama_cpp, quant: str, work: Path, reference, args) -> dict[str, float]:
    model, tokenizer, expected = reference
    path = export_gguf(model_dir(), work / f"embedded-{quant}.gguf", quant).path
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=args.threads,
                          verbose=False)
    same_ids = same_template = exact = 0
    prefix_share = 0.0
    cases = _cases(tokenizer)
    for (text, messages, stops), want in zip(cases, expected, strict=True):
        ids = tokenizer.encode(text)
        same_ids += llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        same_template += messages is not None and _template_matches(llama_cpp, llm, messages)
        got = _llama_greedy(llm, ids, args.new_tokens, stops)
        exact += got == want
        prefix_share += _prefix(got, want) / max(len(want), 1)
    n = len(cases)
    return {"tokenizer": same_ids / n, "template": same_template / len(PROMPTS),
            "exact": exact / n, "prefix": prefix_share / n, "mib": path.stat().st_size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--quants", default="f16,bf16,q8_0,q4_0,q4_k_m")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    llama_cpp = _llama_cpp()
    torch.set_num_threads(args.threads)
    model = load_model(model_dir(), dtype=torch.float32).eval()
    tokenizer = Tokenizer.from_pretrained(model_dir())
    with torch.inference_mode():
        expected = [_openk2_greedy(model, tokenizer.encode(text), args.new_tokens, stops)
                    for text, _, stops in _cases(tokenizer)]
    print(f"llama-cpp-python {llama_cpp.__version__}: {len(PROMPTS)} chat prompts (stop at "
          f"<|im_end|>) + {len(TEXTS)} raw texts, up to {args.new_tokens} greedy tokens")
    print("| quant | MiB | same prompt ids | same template | exact greedy | mean matched prefix |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for quant in args.quants.split(","):
            r = _run_quant(llama_cpp, quant, Path(tmp), (model, tokenizer, expected), args)
            print(f"| {quant} | {r['mib']:.1f} | {r['tokenizer']:.0%} | {r['template']:.0%} | "
                  f"{r['exact']:.0%} | {r['prefix']:.0%} |")


if __name__ == "__main__":
    main()
