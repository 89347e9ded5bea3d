"""The in-process evaluator: an oracle that emits the scripted turns scores 100%, a wrong one 0%.

The oracle answers each rendered prompt with the text the template renders for the scripted
assistant turn, so this checks that template, parser, tool world and swarm handling agree.
"""

from __future__ import annotations

from typing import Any

from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.chat import render_chat
from openk2.train.synthetic import generate_tasks
from openk2.train.synthetic.evaluate import run_task, success_by_family
from openk2.train.synthetic.profile import DEFAULT_PROFILE, ChatProfile

TOK = default_tokenizer()


def _oracle(chats: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> dict[str, str]:
    """Rendered prompt → rendered scripted reply, for every assistant turn of every chat."""
    table = {}
    for messages, tools in chats:
        for k, msg in enumerate(messages):
            if msg["role"] != "assistant":
                continue
            prompt = render_chat(messages[:k], tools)
            full = render_chat(messages[: k + 1], tools, add_generation_prompt=False)
            assert full.startswith(prompt)
            table[prompt] = full[len(prompt) :]
    return table


def test_scripted_replies_pass_every_family() -> None:
    tasks = generate_tasks(12, seed=21, split="heldout", followup_rate=0.5)
    chats = [(t.messages, t.tools) for t in tasks]
    chats += [(s["messages"], s["tools"]) for t in tasks for s in t.subchats]
    table = _oracle(chats)

    def oracle(prompt: list[int]) -> list[int]:
        return TOK.encode(table[TOK.decode(prompt)])

    results = [(t, run_task(t, TOK, oracle)) for t in tasks]
    assert success_by_family(results) == {f: 1.0 for f in {t.family for t in tasks} | {"all"}}
    swarm = next(ep for t, ep in results if t.family == "swarm")
    assigned = [
        m for m in swarm.messages if m.get("tool_call_id", "").startswith("functions.assign")
    ]
    assert swarm.turns == 3 + 2 * len(assigned)  # orchestrator 3 turns, each worker 2


def test_wrong_or_endless_replies_fail() -> None:
    task = generate_tasks(1, seed=22, families=["calc"])[0]
    wrong = run_task(task, TOK, lambda _: TOK.encode("</think>41<|im_end|>"))
    assert not wrong.success and wrong.answer == "41"
    call = (
        "</think><|tool_calls_section_begin|><|tool_call_begin|>functions.kv_get:0"
        '<|tool_call_argument_begin|>{"key":"x"}<|tool_call_end|><|tool_calls_section_end|>'
    )
    endless = run_task(task, TOK, lambda _: TOK.encode(call), max_turns=3)
    assert endless.answer is None and not endless.success and endless.turns == 3
    assert endless.messages[-1]["content"].startswith("Error: no value")


def test_a_runtime_profile_changes_prompts_tools_and_results_consistently() -> None:
    params = {"type": "object", "properties": {}}
    extra = {"type": "function", "function": {"name": "resume", "parameters": params}}
    profile = ChatProfile(
        system_prompt="You orchestrate a swarm.",
        worker_system="Sub-agent.\n{worker_prompt}",
        orchestrator_tools=[*DEFAULT_PROFILE.orchestrator_tools, extra],
        created="created agent '{name}'",
        subagent_result='<subagent name="{name}" n="{n}" steps="{steps}">\n{answer}\n</subagent>',
    )
    tasks = generate_tasks(3, seed=23, families=["swarm"], profile=profile)
    task = tasks[0]
    assert task.messages[0]["content"] == "You orchestrate a swarm." and task.tools[-1] == extra
    results = [m["content"] for m in task.messages if m["role"] == "tool"]
    assert results[0].startswith("created agent '") and results[0].endswith("_worker'")
    assert results[1].startswith('<subagent name="') and 'n="1" steps="2">' in results[1]
    assert task.subchats[0]["messages"][0]["content"].startswith("Sub-agent.\n")
    chats = [(t.messages, t.tools) for t in tasks]
    chats += [(s["messages"], s["tools"]) for t in tasks for s in t.subchats]
    table = _oracle(chats)

    def oracle(prompt: list[int]) -> list[int]:
        return TOK.encode(table[TOK.decode(prompt)])

    assert all(run_task(t, TOK, oracle, profile=profile).success for t in tasks)
