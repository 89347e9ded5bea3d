"""`niah`: needle-in-a-haystack retrieval over a length x depth grid (RULER-lite).

A haystack of seeded filler sentences of a given length (in words) hides one needle, "The
secret code for <name> is <6 digits>.", at a relative depth; other names' codes are mixed in
as distractors (RULER's multi-key variant), so a model that returns any code fails. The
answer passes when it contains the asked-for code. Lengths and depths are attributes, so a
long-context run widens the grid without a new suite.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from openk2.evals.calls import Answer, answer_text, user_call
from openk2.evals.suites.base import Sample, Score, binary, failed_call

DEFAULT_LENGTHS = (128, 512, 1024)
DEFAULT_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
_NAMES = ("Amber", "Basil", "Cedar", "Delta", "Ember", "Flint", "Garnet", "Heron", "Iris")
_SUBJECTS = ("The river", "A grey cat", "The old mill", "Our neighbour", "The north wind",
             "A small boat", "The library", "Every lamp")
_VERBS = ("waits by", "drifts past", "looks over", "hums near", "rests beside", "circles")
_PLACES = ("the market.", "the hill.", "the bridge.", "the harbour.", "the orchard.",
           "the station.", "the square.")


def _filler(rng: random.Random, words: int) -> list[str]:
    out: list[str] = []
    while sum(len(s.split()) for s in out) < words:
        out.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_PLACES)}")
    return out


def _needle(name: str, code: str) -> str:
    return f"The secret code for {name} is {code}."


class NiahSuite:
    """Single-needle retrieval with distractor needles."""

    name = "niah"

    def __init__(self, lengths: tuple[int, ...] = DEFAULT_LENGTHS,
                 depths: tuple[float, ...] = DEFAULT_DEPTHS) -> None:
        if not lengths or min(lengths) < 1 or not depths or not all(0 <= d <= 1 for d in depths):
            raise ValueError("niah needs lengths >= 1 word and depths in [0, 1]")
        self.lengths = lengths
        self.depths = depths

    def _cells(self) -> list[tuple[int, float]]:
        return [(n, d) for n in self.lengths for d in self.depths]

    def samples(self, n: int, seed: int) -> list[Sample]:
        rng = random.Random(f"niah:{seed}")
        cells = self._cells()
        out = []
        for i in range(n):
            length, depth = cells[i % len(cells)]
            text, name, code = self._haystack(rng, length, depth)
            prompt = (f"{text}\n\nWhat is the secret code for {name}? "
                      f"Reply with the code only.")
            out.append(Sample(id=f"niah-{seed}-{i}",
                              calls=(user_call(prompt, max_tokens=16),),
                              reference={"code": code},
                              meta={"length": length, "depth": depth}))
        return out

    def _haystack(self, rng: random.Random, length: int, depth: float) -> tuple[str, str, str]:
        sentences = _filler(rng, length)
        names = rng.sample(_NAMES, 3)
        codes = [f"{rng.randint(0, 999999):06d}" for _ in names]
        for other, code in zip(names[1:], codes[1:], strict=True):
            sentences.insert(rng.randint(0, len(sentences)), _needle(other, code))
        sentences.insert(round(depth * len(sentences)), _needle(names[0], codes[0]))
        return " ".join(sentences), names[0], codes[0]

    def score(self, sample: Sample, answers: list[Answer]) -> Score:
        error = failed_call(answers)
        if error:
            return binary(False, error=error)
        text = answer_text(answers[0])
        return binary(sample.reference["code"] in text, answer=text[:40])

    def ideal(self, sample: Sample, call_index: int) -> dict[str, Any]:
        return {"role": "assistant", "content": sample.reference["code"]}

    def summarize(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        cells: dict[str, list[bool]] = defaultdict(list)
        for r in rows:
            cells[f"{r['meta']['length']}:{r['meta']['depth']}"].append(r["passed"])
        return {"lengths": list(self.lengths), "depths": list(self.depths),
                "grid": {k: sum(v) / len(v) for k, v in cells.items()}}


def report_figures(report: dict[str, Any]) -> dict[str, bytes]:
    """The length x depth heatmaps."""
    from openk2.evals.plots import niah_figures

    return niah_figures(report)
