"""Grade a model on synthetic tasks in process: render, generate, parse, run tools, repeat.

This is the quick in-training check of the embedded model (no server): each task's prompt is
rendered with the K2.6 template, the model's output is parsed with the kimi_k2 tool-call parser,
direct tools run against the task's `ToolWorld`, `create_subagent` registers a worker and
`assign_task` runs that worker as its own conversation (worker tools only), until the model
answers without tool calls. The final figure (served through `openk2 serve` and the swarm) is
measured elsewhere with the same tasks and `check_answer`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openk2.tokenizer import Tokenizer
from openk2.tokenizer.chat import render_chat
from openk2.tokenizer.parse import ToolCatalog, parse_output
from openk2.train.synthetic.generate import Task, check_answer
from openk2.train.synthetic.profile import DEFAULT_PROFILE, ChatProfile
from openk2.train.synthetic.world import ToolWorld

Generate = Callable[[list[int]], list[int]]
"""Prompt ids → generated ids (ending at, and including or not, a stop id)."""


@dataclass(kw_only=True, slots=True)
class Episode:
    """One graded conversation."""

    answer: str | None
    """The final assistant content (None if the turn budget ran out)."""
    success: bool
    turns: int
    """Model calls made, sub-agents included."""
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Session:
    tok: Tokenizer
    generate: Generate
    world: ToolWorld
    max_turns: int
    profile: ChatProfile
    agents: dict[str, str] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    turns: int = 0


def run_conversation(
    session: _Session, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]]
) -> str | None:
    """Drive one conversation to a final answer (appending to `messages`), or None."""
    while session.turns < session.max_turns:
        session.turns += 1
        prompt = session.tok.encode(render_chat(messages, list(tools)))
        text = session.tok.decode(_strip_stop(session.generate(prompt), session.tok))
        reply = parse_output(text, thinking=True, tools=ToolCatalog.from_openai(tools)).to_message()
        messages.append(reply)
        calls = reply.get("tool_calls") or []
        if not calls:
            return reply.get("content") or ""
        for call in calls:
            result = _run_tool(session, call["function"]["name"], call["function"]["arguments"])
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return None


def _strip_stop(ids: list[int], tok: Tokenizer) -> list[int]:
    return ids[:-1] if ids and ids[-1] in tok.stop_ids else ids


def _run_tool(session: _Session, name: str, arguments: str) -> str:
    """Direct tools hit the world; swarm tools register and run workers."""
    if name not in ("create_subagent", "assign_task"):
        return session.world.call(name, arguments)
    try:
        args = json.loads(arguments)
        if name == "create_subagent":
            session.agents[str(args["name"])] = str(args["system_prompt"])
            return session.profile.created.format(name=args["name"])
        agent, prompt = str(args["agent"]), str(args["prompt"])
        system = session.agents[agent]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return f"Error: bad {name} call ({exc})."
    return _run_worker(session, agent, system, prompt)


def _run_worker(session: _Session, agent: str, system: str, prompt: str) -> str:
    """Run a sub-agent as its own conversation; its answer formatted as the profile says."""
    profile = session.profile
    system = profile.worker_system.format(worker_prompt=system)
    worker = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    before = session.turns
    answer = run_conversation(session, worker, profile.worker_tools)
    if answer is None:
        return "Error: the sub-agent did not finish."
    session.runs[agent] = session.runs.get(agent, 0) + 1
    steps = session.turns - before
    return profile.assign_result(answer=answer, name=agent, n=session.runs[agent], steps=steps)


def run_task(
    task: Task,
    tok: Tokenizer,
    generate: Generate,
    *,
    max_turns: int = 12,
    profile: ChatProfile = DEFAULT_PROFILE,
) -> Episode:
    """Run one task from its prompt and grade the final answer exactly.

    `profile` must be the one the task was generated with.
    """
    session = _Session(tok, generate, ToolWorld.from_json(task.world), max_turns, profile)
    messages = [dict(m) for m in task.prompt]
    answer = run_conversation(session, messages, task.tools)
    return Episode(
        answer=answer,
        success=check_answer(task, answer),
        turns=session.turns,
        messages=messages,
    )


def success_by_family(episodes: Sequence[tuple[Task, Episode]]) -> dict[str, float]:
    """Success rate per family plus 'all'."""
    out: dict[str, list[bool]] = {}
    for task, ep in episodes:
        out.setdefault(task.family, []).append(ep.success)
        out.setdefault("all", []).append(ep.success)
    return {k: sum(v) / len(v) for k, v in out.items()}


def model_generate(model: Any, tok: Tokenizer, *, max_new_tokens: int = 160) -> Generate:
    """Greedy generation with openk2's model until `<|im_end|>` or EOS."""
    from openk2.model.generate import generate

    def run(prompt: list[int]) -> list[int]:
        return generate(model, prompt, max_new_tokens=max_new_tokens, stop_ids=tok.stop_ids)

    return run
