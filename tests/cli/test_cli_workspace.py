"""The CLI's workspace tools: the agent tools bound to the training world over a directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openk2.agent.llm.message import ToolCall
from openk2.agent.tools.base import ToolOk
from openk2.cli.workspace import workspace_tools
from openk2.train.synthetic import ToolWorld


async def test_tools_over_a_directory_answer_as_the_training_world(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("owner: dana\n")
    (tmp_path / "kv.json").write_text(json.dumps({"k": "v"}))
    tools = workspace_tools(tmp_path)
    world = ToolWorld(files={"a.txt": "owner: dana\n"}, kv={"k": "v"})
    for name, args in (("read_file", {"path": "a.txt"}), ("kv_get", {"key": "k"}),
                       ("calculator", {"expression": "7*6"})):
        got = await tools.dispatch(ToolCall(f"functions.{name}:0", name, json.dumps(args)))
        assert got == ToolOk(world.call(name, args))


def test_an_unreadable_workspace_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "world.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        workspace_tools(bad)
