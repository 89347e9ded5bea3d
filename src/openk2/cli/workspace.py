"""The direct tools over a workspace path, as `openk2 chat` and `openk2 swarm --workspace` give
them to the model.

The agent's workspace tools (`agent.tools.workspace`) are bound to the training world
(`train.synthetic.ToolWorld`): the same results the embedded model was trained on. Only the
CLI, the composition root, may join `agent` and `train`.
"""

from __future__ import annotations

from pathlib import Path

from openk2.agent.tools.base import Toolset
from openk2.agent.tools.workspace import read_workspace, world_tools
from openk2.train.synthetic.world import ToolWorld


def workspace_tools(path: Path) -> Toolset:
    """calculator, read_file, kv_get and kv_set over the directory or world JSON at `path`.

    Raises OSError or ValueError for a workspace that cannot be read.
    """
    return world_tools(ToolWorld.from_json(read_workspace(path)))


def workspace_toolset(path: Path) -> tuple[Toolset, list[str]]:
    """The web app's server-side tools over `path`, and the files they can read.

    The tools work on an in-memory copy of the workspace (text files read at start, the store
    seeded from kv.json), so nothing outside it can be read and nothing on disk is written.
    """
    world = read_workspace(path)
    return world_tools(ToolWorld.from_json(world)), sorted(world["files"])
