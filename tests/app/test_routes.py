"""The app's routes over HTTP against the embedded model: `/app/info`, server-side tool chats
(opt-in, workspace-bound) and agent-mode swarm runs (streamed, cancelled, resumed after a
server restart)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from app.live_app import AppServer, serving_app
from openk2.agent.llm.message import ToolCall
from openk2.app import parse_tools_option
from openk2.cli.workspace import workspace_toolset
from openk2.embedded.demo import DEMO_TASK, demo_workspace, expected_answer

KEY = "k"
AUTH = {"Authorization": f"Bearer {KEY}"}


def events(response: httpx.Response) -> Iterator[dict]:
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield json.loads(line[5:])


def run_events(server: AppServer, run_id: str, after: int = 0) -> list[dict]:
    with httpx.stream("GET", f"{server.url}/app/swarm/runs/{run_id}/events",
                      params={"after": after}, headers=AUTH, timeout=300) as r:
        assert r.status_code == 200
        return list(events(r))


@pytest.fixture(scope="module")
def with_tools(embedded_model: tuple,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with serving_app(*embedded_model, workspace=demo_workspace(), api_keys=[KEY],
                     runs_dir=tmp_path_factory.mktemp("runs")) as server:
        yield server


def test_the_tools_option_is_explicit(tmp_path: Path) -> None:
    assert parse_tools_option(None) is None
    assert parse_tools_option(f"workspace={tmp_path}") == tmp_path
    assert parse_tools_option("demo") == demo_workspace()
    for bad in ("", str(tmp_path), f"files={tmp_path}", "workspace=", "workspace=/no/such"):
        with pytest.raises(ValueError, match="--tools"):
            parse_tools_option(bad)


async def test_workspace_tools_never_leave_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "inside.txt").write_text("owner: ada\n")
    (tmp_path.parent / "outside.txt").write_text("secret\n")
    tools, files = workspace_toolset(tmp_path)
    assert tools is not None and files == ["inside.txt"]
    for path in ("../outside.txt", str(tmp_path.parent / "outside.txt"), "/etc/passwd"):
        result = await tools.dispatch(ToolCall("c1", "read_file", json.dumps({"path": path})))
        assert result.output.startswith("ERROR") and "secret" not in result.output
    inside = await tools.dispatch(ToolCall("c2", "read_file", '{"path": "inside.txt"}'))
    assert inside.output == "owner: ada\n"


def test_without_tools_the_server_runs_none(embedded_model: tuple, tmp_path: Path) -> None:
    with serving_app(*embedded_model, runs_dir=tmp_path) as server:
        info = httpx.get(server.url + "/app/info").json()
        assert info["tools"] == [] and all(e["mode"] == "chat" for e in info["examples"])
        r = httpx.post(server.url + "/app/chat",
                       json={"messages": [{"role": "user", "content": "What is 2+2?"}]})
        assert r.status_code == 400 and "--tools workspace=DIR" in r.json()["error"]["message"]
        assert httpx.get(server.url + "/").headers["content-type"].startswith("text/html")
        assert httpx.get(server.url + "/static/app.js").status_code == 200


def test_app_routes_need_the_key(with_tools: AppServer) -> None:
    assert httpx.get(with_tools.url + "/app/info").status_code == 401
    assert httpx.post(with_tools.url + "/app/swarm/runs", json={"task": "x"}).status_code == 401
    info = httpx.get(with_tools.url + "/app/info", headers=AUTH).json()
    assert info["model"] == "openk2-embedded" and info["embedded"] and info["parameters"] > 1e6
    assert info["tools"] == ["calculator", "read_file", "kv_get", "kv_set"]


def test_a_tool_chat_streams_the_call_its_result_and_the_answer(with_tools: AppServer) -> None:
    body = {"messages": [{"role": "user", "content": "What is 12*7?"}]}
    with httpx.stream("POST", with_tools.url + "/app/chat", json=body, headers=AUTH,
                      timeout=120) as r:
        got = list(events(r))
    calls = [e for e in got if e["type"] == "tool_call"]
    results = [e for e in got if e["type"] == "tool_result"]
    assert [c["name"] for c in calls] == ["calculator"] and "12*7" in calls[0]["arguments"]
    assert results[0]["output"] == "84" and results[0]["ok"]
    done = got[-1]
    assert done["type"] == "done" and done["messages"][-1]["content"] == "84"
    assert [m["role"] for m in done["messages"]] == ["assistant", "tool", "assistant"]

    follow = body["messages"] + done["messages"] + [{"role": "user",
                                                     "content": "What is stored under team_7?"}]
    with httpx.stream("POST", with_tools.url + "/app/chat", json={"messages": follow},
                      headers=AUTH, timeout=120) as r:
        second = list(events(r))
    assert second[-1]["messages"][-1]["content"] == "falcon-12"


def test_a_bad_conversation_is_refused(with_tools: AppServer) -> None:
    for messages in ([], [{"role": "assistant", "content": "hi"}], [{"role": "user"}]):
        r = httpx.post(with_tools.url + "/app/chat", json={"messages": messages}, headers=AUTH)
        assert r.status_code in (400, 422), (messages, r.text)


def test_agent_mode_streams_every_sub_agent_and_the_answer(with_tools: AppServer) -> None:
    r = httpx.post(with_tools.url + "/app/swarm/runs", json={"task": DEMO_TASK}, headers=AUTH)
    run_id = r.json()["run_id"]
    got = run_events(with_tools, run_id)
    spawned = [e["agent_id"] for e in got if e["type"] == "agent"]
    done = {e["agent_id"]: e["state"] for e in got if e["type"] == "agent_done"}
    assert len(spawned) == 4 and done == dict.fromkeys(spawned, "completed")
    final = got[-1]
    assert final["type"] == "final" and final["state"] == "completed"
    assert final["answer"] == expected_answer()
    assert final["agents"] == 4 and final["critical_steps"] < final["steps"]
    assert [e["seq"] for e in got] == list(range(len(got)))
    assert run_events(with_tools, run_id, after=len(got) - 1) == [final]  # a reload's catch-up
    assert not (with_tools.runs.runs[run_id].active)
    missing = httpx.get(f"{with_tools.url}/app/swarm/runs/nope/events", headers=AUTH)
    assert missing.status_code == 404


class HoldAfterSpawn:
    """Blocks the engine's forwards once run `run_id` has spawned a sub-agent, until released,
    so that a cancel always lands on a running run however fast the model is."""

    def __init__(self, server: AppServer, model: torch.nn.Module) -> None:
        self.server, self.run_id = server, ""
        self.blocked, self.released = threading.Event(), threading.Event()
        self._hook = model.register_forward_pre_hook(self._before_forward)

    def _before_forward(self, module: torch.nn.Module, args: object) -> None:
        run = self.server.runs.runs.get(self.run_id)
        if run is not None and any(e["type"] == "agent" for e in run.events):
            self.blocked.set()
            self.released.wait(120)

    def release(self) -> None:
        self.released.set()
        self._hook.remove()


def test_a_cancelled_run_resumes_after_a_server_restart(embedded_model: tuple,
                                                        tmp_path: Path) -> None:
    with serving_app(*embedded_model, workspace=demo_workspace(), api_keys=[KEY],
                     runs_dir=tmp_path) as first:
        hold = HoldAfterSpawn(first, embedded_model[0])
        try:
            run_id = httpx.post(first.url + "/app/swarm/runs", json={"task": DEMO_TASK},
                                headers=AUTH).json()["run_id"]
            hold.run_id = run_id
            assert hold.blocked.wait(120), "the run never spawned a sub-agent"
            cancel = httpx.post(f"{first.url}/app/swarm/runs/{run_id}/cancel", headers=AUTH)
            assert cancel.json() == {"cancelled": True}
        finally:
            hold.release()
        got = run_events(first, run_id)
        assert got[-1]["type"] == "cancelled" and not any(e["type"] == "final" for e in got)
    assert (tmp_path / run_id / "events.sqlite").is_file()

    with serving_app(*embedded_model, workspace=demo_workspace(), api_keys=[KEY],
                     runs_dir=tmp_path) as second:
        gone = httpx.get(f"{second.url}/app/swarm/runs/{run_id}/events", headers=AUTH)
        assert gone.status_code == 404  # a new process: the page is told to resume
        r = httpx.post(f"{second.url}/app/swarm/runs/{run_id}/resume", headers=AUTH)
        assert r.json() == {"run_id": run_id}
        got = run_events(second, run_id)
        assert got[0] == {"type": "run", "run_id": run_id, "task": DEMO_TASK, "resumed": True,
                          "seq": 0}
        assert got[-1]["type"] == "final" and got[-1]["answer"] == expected_answer()
        assert got[-1]["agents"] == 4
        bad = httpx.post(f"{second.url}/app/swarm/runs/nope/resume", headers=AUTH)
        assert bad.status_code == 404
