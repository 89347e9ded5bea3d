"""`make demo`: the embedded model served by openk2, driven by the swarm, fully offline.

The orchestrator (the embedded model behind `openk2 serve`) gets a task over the demo
workspace, creates a worker type, fans the files out to parallel sub-agents that read them
with `read_file`, and lists their answers. The expected answer is computed from the workspace
itself, so the demo also says whether the model got it right.
"""

from __future__ import annotations

from pathlib import Path

from openk2.agent.swarm.launcher import LaunchOptions, launch
from openk2.agent.swarm.runtime import SwarmOutcome
from openk2.agent.tools.workspace import read_workspace, world_tools
from openk2.train.synthetic.items import field_value
from openk2.train.synthetic.world import ToolWorld

DEMO_FIELD = "owner"
DEMO_FILES = ("docs/atlas.txt", "notes/comet.txt", "data/maple.txt", "config/onyx.txt")
DEMO_TASK = (f"Split these across sub-agents and report the {DEMO_FIELD} in each file: "
             + ", ".join(DEMO_FILES))
"""Phrased like the embedded model's training requests (see train/synthetic/tasks.py)."""


def demo_workspace() -> Path:
    """The shipped demo workspace: a few small files and a key-value store (kv.json)."""
    return Path(__file__).resolve().parent / "assets" / "demo-workspace"


def expected_answer(workspace: Path | None = None) -> str:
    """The demo task's correct answer, read from the workspace files."""
    files = read_workspace(workspace or demo_workspace())["files"]
    return "\n".join(f"{p}: {field_value(files[p], DEMO_FIELD)}" for p in DEMO_FILES)


async def run_demo(base_url: str, model: str, *, task: str = DEMO_TASK,
                   run_dir: Path = Path("runs"), progress: bool = True) -> SwarmOutcome:
    """One durable swarm run of `task` over the demo workspace (greedy decoding)."""
    opts = LaunchOptions(task=task, base_url=base_url, model=model, run_dir=run_dir,
                         max_agents=32, max_steps=80, agent_max_steps=6, temperature=0.0,
                         progress=progress,
                         tools=world_tools(ToolWorld.from_json(read_workspace(demo_workspace()))))
    return await launch(opts)
