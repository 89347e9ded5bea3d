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
