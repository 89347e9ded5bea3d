"""`preflight`: does the endpoint honour the request parameters (Kimi-Vendor-Verifier style)?

One sample per check, each sending raw requests so that what a chat client hides is visible:
- temperature: two temperature-0 calls agree;
- top_p: a tiny `top_p` at temperature 1 gives the temperature-0 answer (nucleus of one);
- max_tokens: a long answer capped at 5 tokens stops with `length` and <= 5 tokens;
- stop: with `stop=[" "]` the answer ends before its first space, where the same request
  without `stop` has one (a space, because any model's multi-word answer holds one);
- seed: two temperature-1 calls with the same seed agree;
- n: `n=2` returns two choices;
- logprobs: `logprobs` + `top_logprobs=2` returns per-token log-probabilities <= 0;
- usage: streamed and plain calls report the same `prompt_tokens`, a longer prompt more, and,
  when the endpoint names its tokenizer (`tokenizer=bundled|DIR`), exactly the count of the
  prompt rendered with the K2.6 chat template;
- stream_end: a stream ends with a finish reason, a usage chunk and `[DONE]`.
`n` is ignored: the suite is its list of checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openk2.evals.calls import Answer, Call, answer_text
from openk2.evals.suites.base import Sample, Score, binary

WORDS = "alpha beta gamma delta epsilon zeta eta theta"
REPEAT = f"Repeat exactly, nothing else: {WORDS}"
COUNT = "Count from 1 to 200, separated by spaces."
LONG_PREFIX = "Read this and ignore it: " + "lorem ipsum dolor sit amet " * 8


def _raw(text: str, *, stream: bool = False, **params: Any) -> Call:
    return Call(messages=({"role": "user", "content": text},),
                params={"max_tokens": 64, **params}, raw=True, stream=stream)


def _status_ok(answers: list[Answer]) -> str | None:
    for a in answers:
        if "error" in a:
            return str(a["error"])
        if a.get("status") != 200:
            return f"HTTP {a.get('status')}: {str(a.get('body', ''))[:200]}"
    return None


def _same_text(a: list[Answer]) -> Score:
    return binary(answer_text(a[0]) == answer_text(a[1]),
                  texts=[answer_text(x)[:80] for x in a])


def _max_tokens(a: list[Answer]) -> Score:
    used = int((a[0].get("usage") or {}).get("completion_tokens") or 0)
    ok = a[0].get("finish_reason") == "length" and 0 < used <= 5
    return binary(ok, completion_tokens=used, finish_reason=a[0].get("finish_reason"))


def _stop(a: list[Answer]) -> Score:
    free, stopped = answer_text(a[0]), answer_text(a[1])
    ok = (" " in free.strip() and " " not in stopped and free.startswith(stopped)
          and a[1].get("finish_reason") == "stop")
    return binary(ok, without_stop=free[:80], with_stop=stopped[:80])


def _n(a: list[Answer]) -> Score:
    return binary(len(a[0].get("choices") or []) == 2, choices=len(a[0].get("choices") or []))


def _logprobs(a: list[Answer]) -> Score:
    content = ((a[0].get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
    ok = bool(content) and all(
        isinstance(t.get("logprob"), int | float) and t["logprob"] <= 0
        and len(t.get("top_logprobs") or []) == 2 for t in content)
    return binary(ok, tokens=len(content))


def _usage(a: list[Answer]) -> Score:
    counts = [int((x.get("usage") or {}).get("prompt_tokens") or 0) for x in a]
    ok = counts[0] == counts[1] > 0 and counts[2] > counts[0]
    expected = [x.get("expected_prompt_tokens") for x in a]
    exact = None if None in expected else all(
        c in e for c, e in zip(counts, expected, strict=True))
    return binary(ok and exact is not False, prompt_tokens=counts, expected=expected,
                  exact=exact)


def _stream_end(a: list[Answer]) -> Score:
    usage = a[0].get("usage") or {}
    ok = bool(a[0].get("done")) and a[0].get("finish_reason") is not None and bool(usage)
    return binary(ok, done=a[0].get("done"), finish_reason=a[0].get("finish_reason"),
                  usage=bool(usage))


CHECKS: dict[str, tuple[tuple[Call, ...], Callable[[list[Answer]], Score]]] = {
    "temperature": ((_raw(REPEAT, temperature=0.0), _raw(REPEAT, temperature=0.0)), _same_text),
    "top_p": ((_raw(REPEAT, temperature=0.0), _raw(REPEAT, temperature=1.0, top_p=1e-6)),
              _same_text),
    "max_tokens": ((_raw(COUNT, temperature=0.0, max_tokens=5),), _max_tokens),
    "stop": ((_raw(REPEAT, temperature=0.0), _raw(REPEAT, temperature=0.0, stop=[" "])),
             _stop),
    "seed": ((_raw(COUNT, temperature=1.0, seed=7), _raw(COUNT, temperature=1.0, seed=7)),
             _same_text),
    "n": ((_raw(REPEAT, temperature=1.0, n=2),), _n),
    "logprobs": ((_raw(REPEAT, temperature=0.0, logprobs=True, top_logprobs=2),), _logprobs),
    "usage": ((_raw(REPEAT, temperature=0.0), _raw(REPEAT, temperature=0.0, stream=True),
               _raw(LONG_PREFIX + REPEAT, temperature=0.0)), _usage),
    "stream_end": ((_raw(REPEAT, temperature=0.0, stream=True),), _stream_end),
}


class PreflightSuite:
    """Parameter pre-flight checks."""

    name = "preflight"

    def __init__(self, checks: tuple[str, ...] = tuple(CHECKS)) -> None:
        unknown = set(checks) - set(CHECKS)
        if unknown:
            raise ValueError(f"unknown preflight checks {sorted(unknown)}; known: {list(CHECKS)}")
        self.checks = checks

    def samples(self, n: int, seed: int) -> list[Sample]:
        return [Sample(id=f"preflight-{check}", calls=CHECKS[check][0],
                       reference={"check": check}, meta={"check": check})
                for check in self.checks]

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        problem = _status_ok(answers)
        if problem:
            return binary(False, error=problem)
        return CHECKS[sample.reference["check"]][1](answers)

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        text = sample.calls[call_index].messages[-1]["content"]
        if text.endswith(COUNT):
            return {"role": "assistant", "content": " ".join(str(i) for i in range(1, 201))}
        return {"role": "assistant", "content": WORDS}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"checks": {r["meta"]["check"]: r["passed"] for r in rows}}
