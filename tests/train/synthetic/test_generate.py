"""Synthetic chats: seeded, split-disjoint, self-consistent with the tool world, exactly graded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from openk2.train.synthetic import (
    Task,
    ToolWorld,
    check_answer,
    generate_tasks,
    read_tasks,
    training_records,
    write_jsonl,
)
from openk2.train.synthetic.profile import DEFAULT_PROFILE
from openk2.train.synthetic.tasks import FAMILIES
from openk2.train.synthetic.world import evaluate

ID = re.compile(r"^functions\.([a-z_]+):(\d+)$")


def _last_user(task: Task) -> str:
    return task.prompt[-1]["content"]


def test_generation_is_seeded_and_covers_every_family() -> None:
    a, b = generate_tasks(24, seed=3), generate_tasks(24, seed=3)
    assert [t.to_json() for t in a] == [t.to_json() for t in b]
    assert {t.family for t in a} == set(FAMILIES)
    assert [t.messages for t in generate_tasks(6, seed=4)] != [t.messages for t in a[:6]]


def test_train_and_heldout_requests_are_disjoint() -> None:
    train = {_last_user(t) for t in generate_tasks(300, seed=0)}
    held = [_last_user(t) for t in generate_tasks(60, seed=0, split="heldout")]
    held += [_last_user(t) for t in generate_tasks(60, seed=1, split="heldout")]
    assert not train & set(held)


def _replay(task: Task) -> str:
    """Re-run every scripted tool call after the prompt against the stored world."""
    world = ToolWorld.from_json(task.world)
    results: dict[str, str] = {}
    answers = iter(sub["messages"][-1]["content"] for sub in task.subchats)
    final = ""
    for msg in task.messages[len(task.prompt) :]:
        for call in msg.get("tool_calls", []):
            name, args = call["function"]["name"], json.loads(call["function"]["arguments"])
            if name == "create_subagent":
                assert args["system_prompt"] == DEFAULT_PROFILE.worker_prompt
                results[call["id"]] = DEFAULT_PROFILE.created.format(name=args["name"])
            elif name == "assign_task":
                results[call["id"]] = next(answers)
            else:
                results[call["id"]] = world.call(name, args)
        if msg["role"] == "tool":
            assert msg["content"] == results[msg["tool_call_id"]]
        if msg["role"] == "assistant" and not msg.get("tool_calls"):
            final = msg["content"]
    return final


def test_scripted_chats_replay_exactly_against_their_world() -> None:
    for task in generate_tasks(60, seed=1) + generate_tasks(12, seed=1, split="heldout"):
        final = _replay(task)
        assert check_answer(task, final), task.id
        assert not final.startswith("Error")
        assert not check_answer(task, final + "0")
        assert not check_answer(task, None)


def test_tool_call_ids_count_globally_from_zero() -> None:
    for task in generate_tasks(30, seed=2):
        for chat in [task.messages, *(s["messages"] for s in task.subchats)]:
            ids = [c["id"] for m in chat for c in m.get("tool_calls", [])]
            parsed = [ID.match(i) for i in ids]
            assert all(parsed)
            assert [int(p.group(2)) for p in parsed if p] == list(range(len(ids)))


def test_swarm_tasks_fan_out_in_one_parallel_turn() -> None:
    swarm = generate_tasks(4, seed=5, families=["swarm"])
    for task in swarm:
        turns = [m for m in task.messages if m.get("tool_calls")]
        assign = [t for t in turns if t["tool_calls"][0]["function"]["name"] == "assign_task"]
        assert len(assign) == 1 and len(assign[0]["tool_calls"]) == len(task.subchats) >= 2
        assert task.expected.count("\n") == len(task.subchats) - 1


def test_followups_give_multi_turn_prompts() -> None:
    tasks = generate_tasks(40, seed=6, followup_rate=1.0)
    assert all(sum(m["role"] == "user" for m in t.prompt) == 2 for t in tasks)
    assert all(_replay(t) == t.expected for t in tasks)


def test_jsonl_round_trip_and_records(tmp_path: Path) -> None:
    tasks = generate_tasks(12, seed=7)
    write_jsonl(tmp_path / "tasks.jsonl", (t.to_json() for t in tasks))
    assert [t.to_json() for t in read_tasks(tmp_path / "tasks.jsonl")] == [
        t.to_json() for t in tasks
    ]
    records = list(training_records(tasks))
    assert len(records) == len(tasks) + sum(len(t.subchats) for t in tasks)
    assert all(set(r) == {"messages", "tools"} for r in records)


def test_bad_arguments_and_calls_are_error_text_not_exceptions() -> None:
    world = ToolWorld(files={"a.txt": "port: 1"})
    assert world.call("read_file", "{not json").startswith("Error: arguments are not valid JSON")
    assert world.call("read_file", "[1]").startswith("Error: arguments must be")
    assert world.call("read_file", {}).startswith("Error: missing argument")
    assert world.call("rm", {}).startswith("Error: unknown tool")
    assert world.call("calculator", {"expression": "__import__('os')"}).startswith("Error")
    assert world.call("calculator", {"expression": "1//0"}).startswith("Error")
    assert world.call("kv_get", {"key": "x"}).startswith("Error: no value")
    assert world.call("kv_set", {"key": "x", "value": "1"}) == "Stored x."
    assert world.call("kv_get", {"key": "x"}) == "1" and world.to_json()["kv"] == {}


def test_calculator_and_generator_validation() -> None:
    assert evaluate("2+3*(4-1)") == 11
    assert evaluate("-7//2") == -4
    with pytest.raises(ValueError, match="too large"):
        evaluate("99999999*99999999")
    with pytest.raises(ValueError):
        generate_tasks(3, families=[])
    with pytest.raises(ValueError, match="unknown task family"):
        generate_tasks(1, families=["poetry"])
    with pytest.raises(ValueError, match="heldout_percent"):
        generate_tasks(1, heldout_percent=0)
