"""Served grading: what the `openai` client sends for a visual task, and how replies are graded
(against a scripted OpenAI-compatible HTTP server; the real server is `openk2 serve`)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from openk2.embedded.vision.evaluate import summarize
from openk2.embedded.vision.served import served_grade
from openk2.embedded.vision.tasks import make_task

TASKS = [make_task(f, seed=0, split="s", index=i)
         for i, f in enumerate(("colour", "word", "direction", "appear"))]


def _reply(content: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": int(time.time()), "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]}


async def test_each_task_goes_out_as_a_media_part_and_the_content_is_graded() -> None:
    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        media, question = body["messages"][0]["content"]
        task = next(t for t in TASKS if t.question == question["text"]
                    and t.data_url() in str(media))
        if task.family == "appear":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        return web.json_response(_reply(task.answer + "." if task.family != "word" else "no"))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        graded = await served_grade(f"http://127.0.0.1:{port}/v1", "m", TASKS)
    finally:
        await runner.cleanup()
    assert [g.correct for g in graded] == [True, False, True, False]
    assert graded[3].answer.startswith("error: InternalServerError")
    kinds = sorted(b["messages"][0]["content"][0]["type"] for b in bodies)
    assert kinds == ["image_url", "image_url", "video_url", "video_url"]
    assert all(b["temperature"] == 0.0 for b in bodies)
    summary = summarize(graded, TASKS, 1.0)
    assert summary["groups"]["image"]["accuracy"] == 0.5
    assert summary["groups"]["video/direction"]["accuracy"] == 1.0
