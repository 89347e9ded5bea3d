"""`code`: small Python functions checked by hidden unit tests in a subprocess with a timeout.

Each task names a function, says what it does and gives one example; the hidden tests are
inputs drawn from the seed with the expected outputs of a reference solution. The model's
code (the first ```python block, else the whole reply) runs with the tests in a fresh
`python -I` in a temporary directory, with a wall-clock timeout and a memory cap, so a
runaway answer fails its sample and nothing else.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openk2.evals.calls import Answer, answer_text, user_call
from openk2.evals.suites.base import Sample, Score, binary, failed_call

TIMEOUT_S = 5.0
MEMORY_BYTES = 512 * 2**20
_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


@dataclass(frozen=True, slots=True)
class Task:
    """A function to write: signature, description, reference source, input generator."""

    name: str
    signature: str
    description: str
    reference: str
    inputs: Callable[[random.Random], tuple[Any, ...]]


def _ints(rng: random.Random, k: int = 8) -> list[int]:
    return [rng.randint(-50, 50) for _ in range(rng.randint(0, k))]


def _word(rng: random.Random) -> str:
    return "".join(rng.choices("abcdeiou rstl", k=rng.randint(0, 12)))


TASKS = (
    Task("sum_top_k", "sum_top_k(xs: list[int], k: int) -> int",
         "the sum of the k largest numbers of xs (all of them if fewer than k)",
         "def sum_top_k(xs, k):\n    return sum(sorted(xs, reverse=True)[:k])\n",
         lambda r: (_ints(r), r.randint(0, 5))),
    Task("count_vowels", "count_vowels(s: str) -> int", "how many of the characters of s are "
         "vowels (a, e, i, o, u)",
         "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s)\n",
         lambda r: (_word(r),)),
    Task("rotate", "rotate(xs: list[int], k: int) -> list[int]",
         "xs rotated right by k places (k may exceed the length; [] stays [])",
         "def rotate(xs, k):\n    if not xs:\n        return []\n    k %= len(xs)\n"
         "    return xs[-k:] + xs[:-k] if k else list(xs)\n",
         lambda r: (_ints(r), r.randint(0, 12))),
    Task("run_length", "run_length(s: str) -> list[tuple[str, int]]",
         "the run-length encoding of s as (character, count) pairs",
         "def run_length(s):\n    out = []\n    for c in s:\n"
         "        if out and out[-1][0] == c:\n            out[-1] = (c, out[-1][1] + 1)\n"
         "        else:\n            out.append((c, 1))\n    return out\n",
         lambda r: ("".join(r.choices("aab", k=r.randint(0, 10))),)),
    Task("dedupe", "dedupe(xs: list[int]) -> list[int]",
         "xs without repeated values, keeping the first occurrence of each, in order",
         "def dedupe(xs):\n    seen = set()\n    out = []\n    for x in xs:\n"
         "        if x not in seen:\n            seen.add(x)\n            out.append(x)\n"
         "    return out\n", lambda r: ([r.randint(0, 5) for _ in range(r.randint(0, 10))],)),
    Task("fib_mod", "fib_mod(n: int, m: int) -> int",
         "the n-th Fibonacci number (fib(0) = 0, fib(1) = 1) modulo m",
         "def fib_mod(n, m):\n    a, b = 0, 1\n    for _ in range(n):\n"
         "        a, b = b, a + b\n    return a % m\n",
         lambda r: (r.randint(0, 60), r.randint(2, 1000))),
    Task("caesar", "caesar(s: str, k: int) -> str",
         "s with each lower-case letter shifted k places forward in the alphabet (wrapping); "
         "other characters unchanged",
         "def caesar(s, k):\n    return ''.join(chr((ord(c) - 97 + k) % 26 + 97) "
         "if 'a' <= c <= 'z' else c for c in s)\n",
         lambda r: (_word(r), r.randint(0, 30))),
    Task("digit_sum", "digit_sum(n: int) -> int", "the sum of the decimal digits of |n|",
         "def digit_sum(n):\n    return sum(int(c) for c in str(abs(n)))\n",
         lambda r: (r.randint(-10**6, 10**6),)),
)


def _expected(task: Task, args: tuple[Any, ...]) -> Any:
    scope: dict[str, Any] = {}
    exec(task.reference, scope)  # our own reference solution, not model output
    return scope[task.name](*args)


def extract_code(text: str) -> str:
    """The first fenced code block of a reply, else the reply itself."""
    match = _BLOCK.search(text)
    return match.group(1) if match else text


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_tests(
    code: str, name: str, cases: list[list[Any]], timeout_s: float = TIMEOUT_S
) -> tuple[bool, str]:
    """Run `code` then assert each case in a fresh isolated interpreter; (passed, why)."""
    harness = (f"{code}\n\nimport json\nfor args, want in json.loads({_json(cases)!r}):\n"
               f"    got = {name}(*args)\n"
               f"    got = [list(x) if isinstance(x, tuple) else x for x in got] "
               f"if isinstance(got, list) else got\n"
               f"    assert got == want, (args, got, want)\n")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", harness], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout_s,
                                  preexec_fn=_limit_memory if sys.platform != "win32" else None)
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout_s}s"
    return proc.returncode == 0, proc.stderr.strip().splitlines()[-1][:200] if proc.stderr else ""


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


class CodeSuite:
    """Write-a-function tasks with hidden tests."""

    name = "code"

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    def samples(self, n: int, seed: int) -> list[Sample]:
        rng = random.Random(f"code:{seed}")
        out = []
        for i in range(n):
            task = TASKS[i % len(TASKS)]
            cases = [list(task.inputs(rng)) for _ in range(6)]
            cases = [[args, _jsonable(_expected(task, tuple(args)))] for args in cases]
            example_args, example_out = cases[0]
            prompt = (f"Write a Python function `{task.signature}` that returns "
                      f"{task.description}. Example: {task.name}(*{example_args!r}) == "
                      f"{example_out!r}. Reply with the code in one ```python block.")
            out.append(Sample(id=f"code-{seed}-{i}", calls=(user_call(prompt, max_tokens=512),),
                              reference={"name": task.name, "cases": cases},
                              meta={"task": task.name}))
        return out

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        error = failed_call(answers)
        if error:
            return binary(False, error=error)
        code = extract_code(answer_text(answers[0]))
        ok, why = run_tests(code, sample.reference["name"], sample.reference["cases"],
                            self.timeout_s)
        return binary(ok, why=why)

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        task = next(t for t in TASKS if t.name == sample.reference["name"])
        return {"role": "assistant", "content": f"```python\n{task.reference}```"}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        by: dict[str, list[bool]] = {}
        for r in rows:
            by.setdefault(r["meta"]["task"], []).append(r["passed"])
        return {"pass_rate_by_task": {k: sum(v) / len(v) for k, v in sorted(by.items())}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
