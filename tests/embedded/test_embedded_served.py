"""The shipped embedded model, through the real stack: `openk2 serve`, the official `openai`
client, the swarm runtime, `openk2 demo` and `openk2 chat`.

One server (a child process, as users run it) serves every test of this module.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openk2.embedded import model_dir
from openk2.embedded.corpus import client_tasks, swarm_tasks
from openk2.embedded.evaluate import evaluate, summarize
from openk2.embedded.export import MAX_SHIPPED_BYTES
from openk2.embedded.server import LocalServer, local_server
from openk2.model import ModelConfig
from openk2.model.params import total_and_active

CLIENT_SAMPLE, CLIENT_MIN = 10, 0.8
SWARM_SAMPLE, SWARM_MIN = 4, 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with local_server() as srv:
        yield srv


def test_the_model_ships_in_the_package_within_budget() -> None:
    files = {p.name: p.stat().st_size for p in model_dir().iterdir()}
    assert {"config.json", "model.safetensors", "tiktoken.model"} <= set(files)
    assert sum(files.values()) <= MAX_SHIPPED_BYTES
    config = ModelConfig.from_hf_json(json.loads((model_dir() / "config.json").read_text()))
    assert config.n_routed_experts > 1 and config.kv_lora_rank > 0  # K2: MoE + MLA
    total, _ = total_and_active(config)
    assert 3e6 < total < 25e6


def test_heldout_tasks_succeed_through_the_openai_client_and_the_swarm(
    server: LocalServer,
) -> None:
    """The model drives both paths with tools: it calls them, gets results, and answers
    correctly on tasks it never saw (greedy, graded exactly).

    A sample of the held-out success that `openk2 embedded eval` measures on 100 + 100 tasks
    (README); the thresholds leave room for one or two misses, since batched and single-row
    decode differ in summation order and a near tie may flip a token.
    """
    tasks = {"client": client_tasks(CLIENT_SAMPLE, seed=11, split="heldout"),
             "swarm": swarm_tasks(SWARM_SAMPLE, seed=11, split="heldout")}
    graded = []
    for mode, chosen in tasks.items():
        graded += asyncio.run(evaluate(server.base_url, server.model, chosen, mode))
    for g in graded:
        assert g.error is None and g.answer, g
        assert g.calls >= (5 if g.mode == "swarm" else 2), g  # tools were used before answering
    success = summarize(graded, 0.0)["success"]
    assert success["client"] >= CLIENT_MIN and success["swarm"] >= SWARM_MIN, graded


def _cli(*args: str, stdin: str = "") -> str:
    done = subprocess.run([sys.executable, "-m", "openk2", *args], input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_demo_fans_out_over_sub_agents_and_gets_the_answer(server: LocalServer,
                                                           tmp_path: Path) -> None:
    out = _cli("demo", "--base-url", server.base_url, "--model", server.model,
               "--run-dir", str(tmp_path))
    assert "answer matches the workspace files: yes" in out and "critical steps" in out
    assert out.count("completed") >= 3  # the run and at least two sub-agents


def test_chat_runs_tools_and_answers(server: LocalServer) -> None:
    out = _cli("chat", "--base-url", server.base_url, "--model", server.model,
               stdin="What is 12*7?\nexit\n")
    assert "-> calculator" in out and "<- " in out
