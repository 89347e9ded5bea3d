"""Held-out visual accuracy through a running server, as a user gets it: the official `openai`
client sends each task's chat (an `image_url` or `video_url` data-URL part, then the question)
with greedy decoding, and the returned `content` is graded exactly like the direct evaluation
(`evaluate.is_correct`). The summary has the same shape as `evaluate.summarize`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from openk2.embedded.vision.evaluate import Answered, is_correct, summarize
from openk2.embedded.vision.tasks import VisualTask


async def served_answer(client: Any, model: str, task: VisualTask) -> Answered:
    """One task through `client.chat.completions.create`; a failed request counts as wrong
    and keeps its error text as the answer, so one bad item never stops a run."""
    try:
        resp = await client.chat.completions.create(
            model=model, messages=task.messages(), temperature=0.0, max_tokens=16)
        got = resp.choices[0].message.content or ""
    except Exception as exc:  # noqa: BLE001  (graded as a miss, reported with its reason)
        got = f"error: {type(exc).__name__}: {exc}"
    return Answered(task.id, task.family, task.kind, task.answer, got.strip(),
                    is_correct(got, task.answer))


async def served_grade(base_url: str, model: str, tasks: Sequence[VisualTask], *,
                       concurrency: int = 4) -> list[Answered]:
    """Every task, `concurrency` at a time, in task order."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(task: VisualTask) -> Answered:
        async with gate:
            return await served_answer(client, model, task)

    try:
        return list(await asyncio.gather(*(one(t) for t in tasks)))
    finally:
        await client.close()


def evaluate_served(base_url: str, model: str, tasks: Sequence[VisualTask], *,
                    concurrency: int = 4) -> tuple[list[Answered], dict[str, Any]]:
    """Grade `tasks` through the server at `base_url` and summarise them."""
    start = time.perf_counter()
    graded = asyncio.run(served_grade(base_url, model, tasks, concurrency=concurrency))
    return graded, summarize(graded, tasks, time.perf_counter() - start)
