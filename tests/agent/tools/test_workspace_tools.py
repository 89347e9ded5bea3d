"""Workspace loading and the direct tools (calculator, read_file, kv_get, kv_set)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openk2.agent.llm.message import ToolCall
from openk2.agent.tools.base import ToolError, ToolOk
from openk2.agent.tools.workspace import (
    MAX_WORKSPACE_FILE,
    read_workspace,
    world_tool_specs,
    world_tools,
)
from openk2.train.synthetic import ToolWorld
from openk2.train.synthetic.world import WORKER_TOOL_NAMES, tool_schemas


def workspace_world(path: Path) -> ToolWorld:
    return ToolWorld.from_json(read_workspace(path))


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("owner: carol\nport: 8443\n")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "big.txt").write_text("x" * (MAX_WORKSPACE_FILE + 1))
    (tmp_path / "kv.json").write_text(json.dumps({"team_7": "falcon-12", "n": 3}))
    return tmp_path


def test_directory_workspace_reads_text_files_and_the_store(tmp_path: Path) -> None:
    world = workspace_world(_workspace(tmp_path))
    assert set(world.files) == {"docs/a.txt"}  # binary and oversized files are left out
    assert world.kv == {"team_7": "falcon-12", "n": "3"}


def test_json_workspace_and_bad_inputs(tmp_path: Path) -> None:
    good = tmp_path / "world.json"
    good.write_text(json.dumps({"files": {"f.txt": "hi"}, "kv": {"k": "v"}}))
    assert workspace_world(good).files == {"f.txt": "hi"}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        workspace_world(bad)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        workspace_world(tmp_path / "list.json")
    with pytest.raises(FileNotFoundError):
        workspace_world(tmp_path / "missing")


async def test_tools_dispatch_against_the_world(tmp_path: Path) -> None:
    tools = world_tools(workspace_world(_workspace(tmp_path)))
    assert tools.names == ["calculator", "read_file", "kv_get", "kv_set"]

    async def run(name: str, **args: str) -> object:
        return await tools.dispatch(ToolCall(f"functions.{name}:0", name, json.dumps(args)))

    assert await run("calculator", expression="6*(3+4)") == ToolOk("42")
    assert await run("read_file", path="docs/a.txt") == ToolOk("owner: carol\nport: 8443\n")
    assert await run("kv_set", key="x", value="y") == ToolOk("Stored x.")
    assert await run("kv_get", key="x") == ToolOk("y")
    missing = await run("read_file", path="nope.txt")
    assert isinstance(missing, ToolError) and "no such file" in missing.message
    unsafe = await run("calculator", expression="__import__('os')")
    assert isinstance(unsafe, ToolError)
    no_args = await tools.dispatch(ToolCall("functions.kv_get:1", "kv_get", "{}"))
    assert isinstance(no_args, ToolError) and "key" in no_args.message


async def test_tool_results_are_the_training_world_results() -> None:
    world = ToolWorld(files={"p.txt": "city: oslo"}, kv={"k": "v"})
    tools = world_tools(world)
    for name, args in (("read_file", {"path": "p.txt"}), ("kv_get", {"key": "k"}),
                       ("calculator", {"expression": "2+2"})):
        tool = tools.get(name)
        assert await tool.run(tool.Params(**args)) == ToolOk(world.call(name, args))


def test_names_are_the_training_worlds_and_specs_need_no_world() -> None:
    specs = world_tool_specs()
    assert tuple(s.name for s in specs) == WORKER_TOOL_NAMES
    assert specs == world_tools(ToolWorld()).specs()
    trained = {t["function"]["name"]: t["function"] for t in tool_schemas(WORKER_TOOL_NAMES)}
    for spec in specs:  # every parameter the training chats declare is one the tool takes
        assert set(spec.parameters["properties"]) == set(trained[spec.name]["parameters"]
                                                         ["properties"])
