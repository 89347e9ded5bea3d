"""The swarm over real HTTP: a 429 storm from a local OpenAI-protocol server, two providers."""

from __future__ import annotations

import random

from swarm_scripts import echo_worker, fan_out, is_orchestrator, route

from openk2.agent.llm import RateLimitError
from openk2.agent.llm.openai_compat import OpenAICompatProvider, RetryPolicy
from openk2.agent.llm.scripted import Reply, ScriptedProvider
from openk2.agent.swarm import AgentSpec, BackoffPolicy, Swarm, SwarmConfig


async def test_http_429_storm_is_survived_without_losing_work(openai_server) -> None:
    rng = random.Random(3)
    ok = route(fan_out([f"q{i}" for i in range(30)]), echo_worker(delay=0.02, steps=2))

    def stormy(c):
        if not is_orchestrator(c) and rng.random() < 0.6:
            return RateLimitError("quota", retry_after=0.01)
        return ok(c)

    server = await openai_server(stormy)
    provider = OpenAICompatProvider(server.base_url, "k2",
                                    retry=RetryPolicy(retry_rate_limits=False))
    config = SwarmConfig(backoff=BackoffPolicy(base_s=0.01, max_s=0.1, max_retries=100))
    swarm = Swarm(provider, config=config)
    out = await swarm.run("Thirty questions.")
    await provider.aclose()
    assert out.state == "completed" and {a.state for a in out.agents} == {"completed"}
    assert out.accounting.total_steps == 2 + 30 * 2
    refused = len(server.requests) - out.accounting.total_steps
    assert refused == swarm.rate_limited and refused > 30


async def test_agent_types_can_use_another_provider() -> None:
    main = ScriptedProvider(route(fan_out(["a", "b"], agent="cheap"), lambda c: Reply(text="x")))
    cheap = ScriptedProvider(lambda c: Reply(text="cheap answer"), model="small")
    spec = AgentSpec(name="cheap", system_prompt="Be brief.", provider="cheap")
    out = await Swarm(main, providers={"cheap": cheap}, specs=[spec]).run("Two cheap tasks.")
    assert len(cheap.calls) == 2 and len(main.calls) == 2
    assert [a.output for a in out.agents] == ["cheap answer", "cheap answer"]
