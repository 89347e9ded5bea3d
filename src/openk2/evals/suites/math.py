"""`math`: generated arithmetic and algebra word problems with exact integer checkers.

Three kinds, all with integer answers so the check is exact: multi-step shopping arithmetic,
a linear equation `a*x + b = c`, and a rate/time problem. The model is asked to end with
`ANSWER: <n>`; the last integer after the marker (else the last integer in the text) counts.
"""

from __future__ import annotations

import random
import re
from typing import Any

from openk2.evals.calls import Answer, answer_text, user_call
from openk2.evals.suites.base import Sample, Score, binary, failed_call

_INSTRUCTION = "Solve the problem. End your reply with a line 'ANSWER: <integer>'."
_NAMES = ("Ada", "Bo", "Chen", "Dara", "Eli", "Fatma", "Goran", "Hana")
_ITEMS = ("apples", "pencils", "tickets", "bolts", "stamps", "cups")
_INT = re.compile(r"-?\d[\d,]*")


def _shopping(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    boxes, per_box, price, given = (rng.randint(2, 9), rng.randint(3, 12), rng.randint(2, 15),
                                    rng.randint(1, 5))
    text = (f"{name} buys {boxes} boxes of {item} with {per_box} {item} in each box, then gives "
            f"away {given} {item}. Each remaining item sells for ${price}. How many dollars "
            f"does {name} get for selling all remaining {item}?")
    return text, (boxes * per_box - given) * price


def _linear(rng: random.Random) -> tuple[str, int]:
    a, x, b = rng.randint(2, 12), rng.randint(-20, 20), rng.randint(-50, 50)
    return f"Find the integer x such that {a}*x + ({b}) = {a * x + b}.", x


def _rate(rng: random.Random) -> tuple[str, int]:
    speed, hours, extra = rng.randint(20, 90), rng.randint(2, 7), rng.randint(5, 60)
    text = (f"A train runs at {speed} km/h for {hours} hours, then {extra} km more. How many "
            f"kilometres does it travel in total?")
    return text, speed * hours + extra


_KINDS = {"shopping": _shopping, "linear": _linear, "rate": _rate}


def extract_integer(text: str) -> int | None:
    """The answer integer: after the last `ANSWER:`, else the last integer in the text."""
    marked = "ANSWER:" in text
    found = _INT.findall(text.rsplit("ANSWER:", 1)[-1] if marked else text)
    if not found:
        return None
    return int(found[0 if marked else -1].replace(",", ""))


class MathSuite:
    """Word problems with exact integer answers."""

    name = "math"

    def samples(self, n: int, seed: int) -> list[Sample]:
        rng = random.Random(f"math:{seed}")
        out = []
        for i in range(n):
            kind = list(_KINDS)[i % len(_KINDS)]
            text, value = _KINDS[kind](rng)
            call = user_call(f"{text}\n\n{_INSTRUCTION}", max_tokens=512)
            out.append(Sample(id=f"math-{seed}-{i}", calls=(call,), reference={"answer": value},
                              meta={"kind": kind}))
        return out

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        error = failed_call(answers)
        if error:
            return binary(False, error=error)
        got = extract_integer(answer_text(answers[0]))
        return binary(got == sample.reference["answer"], got=got)

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        return {"role": "assistant", "content": f"ANSWER: {sample.reference['answer']}"}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        by_kind: dict[str, list[bool]] = {}
        for row in rows:
            by_kind.setdefault(row["meta"]["kind"], []).append(row["passed"])
        return {"pass_rate_by_kind": {k: sum(v) / len(v) for k, v in sorted(by_kind.items())}}
