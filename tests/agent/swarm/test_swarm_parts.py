"""Swarm building blocks: accounting, budgets, results, specs, the SQLite store."""

from __future__ import annotations

import asyncio

import pytest

from openk2.agent.llm import Usage
from openk2.agent.swarm import (
    TRUNCATION_MARKER,
    AgentSpec,
    ArtifactStore,
    Budget,
    BudgetExceededError,
    BudgetLimits,
    Pricing,
    StoredEvent,
    account,
    cap_text,
    load_specs,
    open_run_store,
)
from openk2.agent.swarm.results import extract_result

U = {"prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 4}


def _ev(agent: str, kind: str, step: int = 0, **data) -> StoredEvent:
    return StoredEvent(0, agent, kind, step, data, 0.0)


def test_critical_steps_follow_kimis_definition_recursively() -> None:
    events = [
        _ev("main", "llm", 1, usage=U),
        _ev("a", "spawn", parent="main", parent_step=1), _ev("b", "spawn", parent="main",
                                                             parent_step=1),
        *[_ev("a", "llm", s, usage=U) for s in (1, 2)],
        *[_ev("b", "llm", s, usage=U) for s in (1, 2, 3)],
        _ev("c", "spawn", parent="a", parent_step=2),
        *[_ev("c", "llm", s, usage=U) for s in (1, 2, 3, 4)],
        _ev("main", "llm", 2, usage=U),
        _ev("b", "resume", 3, parent="main", parent_step=2), _ev("b", "llm", 4, usage=U),
        _ev("main", "llm", 3, usage=U),
    ]
    acc = account(events, Pricing(input_per_mtok=1e6, output_per_mtok=2e6, cached_per_mtok=0))
    # main step 1: 1 + max(a: 1 + (1 + c=4) = 6, b: 3) = 7; step 2: 1 + b's resume (1); step 3: 1
    assert acc.critical_steps == 7 + 2 + 1
    assert acc.total_steps == 3 + 2 + 4 + 4
    assert acc.own_usage["c"] == Usage(40, 20, 16)
    assert acc.rolled_usage["a"] == Usage(60, 30, 24)
    assert acc.rolled_usage["main"] == acc.usage == Usage(130, 65, 52)
    assert acc.cost == pytest.approx((130 - 52) * 1 + 65 * 2)


def test_budget_reserves_before_spending() -> None:
    budget = Budget(BudgetLimits(max_steps=3, max_agents=2, max_tokens=100))
    budget.admit_agents(2)
    with pytest.raises(BudgetExceededError, match="may spawn 0 more"):
        budget.admit_agents(1)
    budget.reserve_steps()
    budget.reserve_steps()
    with pytest.raises(BudgetExceededError, match="step budget"):
        budget.reserve_steps()  # the last step is the orchestrator's
    budget.reserve_steps(orchestrator=True)
    assert budget.steps == 3
    budget.add_usage(Usage(90, 20))
    with pytest.raises(BudgetExceededError) as info:
        budget.reserve_steps(orchestrator=True)
    assert info.value.kind == "tokens" and budget.tokens_left() == 0
    with pytest.raises(ValueError):
        BudgetLimits(max_steps=0)


def test_cap_text_keeps_head_and_tail_with_marker(tmp_path) -> None:
    artifacts = ArtifactStore(tmp_path)
    text = "A" * 5000 + "B" * 5000
    capped = cap_text(text, 1500, artifacts, "worker-1")
    assert capped.startswith("A" * 1000) and capped.endswith("B" * 500)
    assert f"{TRUNCATION_MARKER} 8500 of 10000 characters omitted" in capped
    assert artifacts.load("artifact://worker-1") == text
    assert cap_text("short", 1500) == "short"
    assert extract_result("notes <result>one</result> more <result> two </result>") == "two"


def test_agent_specs_from_yaml(tmp_path) -> None:
    good = tmp_path / "agents.yaml"
    good.write_text("- name: researcher\n  system_prompt: Find facts.\n  tools: [search]\n")
    assert load_specs(good) == [AgentSpec(name="researcher", system_prompt="Find facts.",
                                          tools=("search",))]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  system_prompt: y\n  tool: [search]\n")
    with pytest.raises(ValueError, match="unknown agent spec fields"):
        load_specs(bad)
    with pytest.raises(ValueError, match="non-empty system_prompt"):
        AgentSpec(name="x", system_prompt=" ")


async def test_store_groups_commits_and_survives_reopen(tmp_path) -> None:
    store = open_run_store(tmp_path, "r")
    for i in range(50):
        store.append(f"a{i % 5}", "llm", i, {"i": i})
    await store.sync()
    reopened = open_run_store(tmp_path, "r", must_exist=True)
    assert [e.data["i"] for e in reopened.events()] == list(range(50))
    store.append("a0", "tool", 1, {"x": 1})  # not synced: invisible to another connection
    assert len(list(reopened.events())) == 50
    await asyncio.sleep(0)  # ... until the scheduled group commit runs
    assert len(list(reopened.events())) == 51
