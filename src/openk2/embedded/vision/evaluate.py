"""Direct held-out accuracy of a multimodal model on the visual tasks: greedy answers, graded
exactly, per family with a 95% Wilson interval and two chance levels.

- `chance`: a uniform guess over the family's answers (`tasks.ANSWERS`);
- `blind`: the best any text-only guesser can do knowing the question (by construction of the
  generator the answer is uniform over the ones the question allows, e.g. "What appears
  after the square?" is never "square");
- `majority`: the most frequent held-out answer per question string, which peeks at the
  held-out labels and so bounds every blind guess from above on this very sample.

The answer is read as a served client would see it: the text after `</think>` up to
`<|im_end|>`, stripped; it must equal the expected word (case-insensitive, a final period
allowed).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from openk2.embedded.vision.inputs import task_chat
from openk2.embedded.vision.tasks import ANSWERS, VisualTask
from openk2.model.vision import KimiK25ForConditionalGeneration
from openk2.model.vision.processor import pack_items

BLIND_CHANCE = {"colour": 1 / 6, "shape": 1 / 5, "count": 1 / 4, "position": 1 / 2,
                "word": 1 / 8, "direction": 1 / 4, "mover": 1 / 5, "appear": 1 / 4}
"""Best text-only accuracy per family (see the module docstring)."""
MAX_ANSWER_TOKENS = 8


@dataclass(frozen=True, slots=True)
class Answered:
    task_id: str
    family: str
    kind: str
    expected: str
    answer: str
    correct: bool


def is_correct(answer: str, expected: str) -> bool:
    return answer.strip().removesuffix(".").strip().lower() == expected.lower()


def visible_answer(text: str) -> str:
    """What a client gets as `content`: the text after the (empty) thinking block."""
    return text.rpartition("</think>")[2].strip()


@torch.no_grad()
def answer(model: KimiK25ForConditionalGeneration, tokenizer: Any, task: VisualTask) -> str:
    """The model's greedy answer to one task."""
    chat = task_chat(task, tokenizer, with_answer=False)
    ids = torch.tensor([chat.chat.ids])
    pixels, grid = pack_items(chat.items)
    embeds_BTD = model.input_embeddings(ids, pixels, grid)
    table = model.language_model.model.embed_tokens
    stops = {tokenizer.eos_id, *tokenizer.encode("<|im_end|>")}
    out: list[int] = []
    for _ in range(MAX_ANSWER_TOKENS):
        logits = model.language_model(None, inputs_embeds=embeds_BTD, logits_to_keep=1)
        token = int(logits[0, -1].argmax())
        if token in stops:
            break
        out.append(token)
        embeds_BTD = torch.cat([embeds_BTD, table(torch.tensor([[token]]))], dim=1)
    return visible_answer(tokenizer.decode(out))


def grade(model: KimiK25ForConditionalGeneration, tokenizer: Any,
          tasks: Iterable[VisualTask]) -> list[Answered]:
    model.eval()
    graded = []
    for task in tasks:
        got = answer(model, tokenizer, task)
        graded.append(Answered(task.id, task.family, task.kind, task.answer, got,
                               is_correct(got, task.answer)))
    return graded


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def majority_baseline(tasks: Sequence[VisualTask]) -> float:
    """Accuracy of answering each question string with its most frequent held-out answer."""
    by_question: dict[str, Counter[str]] = {}
    for task in tasks:
        by_question.setdefault(task.question, Counter())[task.answer] += 1
    hits = sum(counts.most_common(1)[0][1] for counts in by_question.values())
    return hits / max(1, len(tasks))


def summarize(graded: Sequence[Answered], tasks: Sequence[VisualTask],
              seconds: float) -> dict[str, Any]:
    """Accuracy, interval and chance levels per family and per kind (image, video)."""
    keys = sorted({g.kind for g in graded} | {f"{g.kind}/{g.family}" for g in graded})
    out: dict[str, Any] = {"tasks": len(graded), "seconds": round(seconds, 1), "groups": {}}
    for key in keys:
        chosen = [(g, t) for g, t in zip(graded, tasks, strict=True)
                  if key in (g.kind, f"{g.kind}/{g.family}")]
        out["groups"][key] = _group(chosen)
    return out


def _group(chosen: Sequence[tuple[Answered, VisualTask]]) -> dict[str, Any]:
    n, hits = len(chosen), sum(g.correct for g, _ in chosen)
    low, high = wilson(hits, n)
    families = [t.family for _, t in chosen]
    return {
        "n": n, "accuracy": round(hits / n, 4), "ci95": [round(low, 4), round(high, 4)],
        "chance": round(sum(1 / len(ANSWERS[f]) for f in families) / n, 4),
        "blind": round(sum(BLIND_CHANCE[f] for f in families) / n, 4),
        "majority": round(majority_baseline([t for _, t in chosen]), 4),
    }


def evaluate_direct(model: KimiK25ForConditionalGeneration, tokenizer: Any,
                    tasks: Sequence[VisualTask]) -> tuple[list[Answered], dict[str, Any]]:
    """Grade `tasks` and summarise them."""
    start = time.perf_counter()
    graded = grade(model, tokenizer, tasks)
    return graded, summarize(graded, tasks, time.perf_counter() - start)


def report_rows(graded: Sequence[Answered]) -> list[dict[str, Any]]:
    return [asdict(g) for g in graded]
