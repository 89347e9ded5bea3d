"""The interactive shell driven by scripted input: approvals, slash commands, /undo."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from openk2.agent.llm.scripted import Reply, ScriptedProvider, call
from openk2.code.config import CodeSettings
from openk2.code.interactive import run_interactive
from openk2.code.safety import build_safety
from openk2.code.sessions import SessionStore, read_records
from openk2.code.workspace import Workspace


def _lines(*answers: str):
    queue = list(answers)
    asked: list[str] = []

    async def read_line(prompt: str) -> str:
        asked.append(prompt)
        if not queue:
            raise EOFError
        return queue.pop(0)

    return read_line, asked


async def test_approve_then_undo_and_commands(tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    (ws_dir / "notes.txt").write_text("v1\n")
    ws = Workspace.open(ws_dir)
    provider = ScriptedProvider([
        Reply(tool_calls=[call("Shell", 0, command="echo v2 > notes.txt")]),
        Reply(text="Updated the notes."),
        Reply(tool_calls=[call("Shell", 1, command="touch other.txt")]),
        Reply(text="Could not write."),
    ])
    read_line, asked = _lines("update the notes", "y", "/cost", "/undo", "/mode auto",
                              "/mode", "write another", "no, leave it", "/help", "/bogus",
                              "/exit", "never read")
    out = io.StringIO()
    settings = CodeSettings(model="scripted", mode="manual")
    store = SessionStore(tmp_path / "sessions")
    await run_interactive(settings, ws, provider=provider, store=store, resume=None,
                          make_safety=lambda a: build_safety(settings, ws, asker=a),
                          console=Console(file=out, width=120), read_line=read_line)
    text = out.getvalue()
    assert "approve?" in text and "Updated the notes." in text
    assert (ws_dir / "notes.txt").read_text() == "v1\n"  # /undo restored it
    assert "files restored to snapshot" in text and "mode: auto" in text
    assert "tokens in this session" in text and "unknown command /bogus" in text
    assert not (ws_dir / "other.txt").exists()
    assert "never read" not in asked
    # /undo took the whole turn back: the next turn's call no longer holds it
    assert [m.role for m in provider.calls[2].messages] == ["system", "user"]
    assert provider.calls[2].messages[1].content == "write another"
    assert "undid the turn 'update the notes'" in text
    rejected = [m for m in provider.calls[3].messages if m.role == "tool"][-1]
    assert "rejected" in rejected.content and "leave it" in rejected.content
    sid = store.last(ws.root)
    kinds = [r["kind"] for r in read_records(store.root / "sessions" / f"{sid}.jsonl")]
    assert kinds.count("end") == 2 and "mode" in kinds and "rewind" in kinds
    from openk2.code.sessions import restore

    resumed = restore(store.root / "sessions" / f"{sid}.jsonl").history
    assert not any(m.content == "update the notes" for m in resumed)  # a resume sees the undo


async def test_ctrl_c_stops_the_run_and_the_session_goes_on(tmp_path: Path) -> None:
    import asyncio
    import os
    import signal

    from code_doubles import session

    from openk2.code.ui.shell import InteractiveShell, ShellState

    s, provider, ws = session(tmp_path, [
        Reply(tool_calls=[call("Shell", 0, command="sleep 30; touch late.txt")]),
        Reply(text="picked up after the interruption"),
    ])
    read_line, _ = _lines("start the slow thing", "go on", "/exit")
    out = io.StringIO()
    shell = InteractiveShell(ShellState(s, lambda: s), Console(file=out), read_line)
    asyncio.get_running_loop().call_later(1.0, os.kill, os.getpid(), signal.SIGINT)
    await asyncio.wait_for(shell.run(), 20)
    assert "interrupted" in out.getvalue() and len(provider.calls) == 2
    sent = provider.calls[1].messages
    assert sent[-2].role == "tool" and "interrupted" in sent[-2].content
    assert sent[-1].content == "go on" and not (ws.root / "late.txt").exists()


class _Switchable(ScriptedProvider):
    """A scripted provider whose model name can be switched, like the HTTP provider's."""

    model = "k2-small"

    @property
    def model_name(self) -> str:
        return self.model


async def test_compact_sessions_model_and_approvals(tmp_path: Path) -> None:
    from openk2.agent.guard import ApprovalStore

    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    ws = Workspace.open(ws_dir)
    ApprovalStore.for_workspace(ws.root).add(["pytest"])
    ApprovalStore.for_workspace(ws.root).add(["make", "test"])
    provider = _Switchable([
        *[Reply(tool_calls=[call("Shell", i, command=f"echo {i}")]) for i in range(3)],
        Reply(text="ran three echos"),
        Reply(text="SUMMARY: three echos ran"),  # the /compact call
    ])
    read_line, _ = _lines("run three echos", "/compact", "/sessions", "/model",
                          "/model k2-big", "/approvals", "/approvals remove 1",
                          "/approvals remove 9", "/exit")
    out = io.StringIO()
    settings = CodeSettings(model="scripted", mode="auto")
    store = SessionStore(tmp_path / "sessions")
    await run_interactive(settings, ws, provider=provider, store=store, resume=None,
                          make_safety=lambda a: build_safety(settings, ws, asker=a),
                          console=Console(file=out, width=150), read_line=read_line)
    text = out.getvalue()
    sid = store.last(ws.root)
    records = list(read_records(store.root / "sessions" / f"{sid}.jsonl"))
    assert "compacted:" in text and "echo 0" in provider.calls[4].messages[-1].content
    compaction = [r for r in records if r["kind"] == "compaction"][-1]["messages"]
    assert "SUMMARY: three echos ran" in compaction[1]["content"]
    assert f"* {sid}" in text and "run three echos" in text and "1 sessions" in text
    assert "model: k2-small" in text and "model: k2-big" in text and provider.model == "k2-big"
    assert any(r["kind"] == "model" and r["model"] == "k2-big" for r in records)
    assert "1. pytest" in text and "2. make test" in text and "removed approval: pytest" in text
    assert "usage: /approvals remove N (1 to 1)" in text
    assert ApprovalStore.for_workspace(ws.root).prefixes == (("make", "test"),)


async def test_compact_with_nothing_to_cut(tmp_path: Path) -> None:
    from code_doubles import session

    from openk2.code.ui.shell import InteractiveShell, ShellState

    s, provider, ws = session(tmp_path, [Reply(text="hi")])
    read_line, _ = _lines("hello", "/compact", "/sessions", "/approvals", "/exit")
    out = io.StringIO()
    state = ShellState(s, lambda: s, store=SessionStore(tmp_path / "state"), workspace=ws.root)
    await InteractiveShell(state, Console(file=out), read_line).run()
    text = out.getvalue()
    assert "nothing to compact yet" in text and len(provider.calls) == 1
    assert "1 sessions in this workspace" in text and "hello" in text
    assert "this session keeps no approvals" in text


async def test_prompt_keeps_pasted_and_typed_lines(tmp_path: Path) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from openk2.code.ui.prompt_input import prompt_session

    with create_pipe_input() as pipe:
        prompt = prompt_session(tmp_path / "history", input=pipe, output=DummyOutput())
        pipe.send_text("\x1b[200~def f():\r\n    return 1\x1b[201~\r")  # a bracketed paste
        assert await prompt.prompt_async("> ") == "def f():\n    return 1"
        pipe.send_text("first line\x1b\rsecond line\r")  # Esc Enter, then Enter
        assert await prompt.prompt_async("> ") == "first line\nsecond line"
    assert (tmp_path / "history").is_file()


async def test_status_line_thinking_and_per_model_settings(tmp_path: Path) -> None:
    from code_doubles import session

    from openk2.agent.llm import Usage
    from openk2.code.ui.shell import InteractiveShell, ShellState

    s, provider, _ = session(tmp_path, [Reply(text="hi", usage=Usage(2000, 500, 1000))])
    settings = CodeSettings(
        model="scripted", price={"input": 1.0, "output": 4.0, "cached_input": 0.5},
        models={"big": {"context_window": 200_000, "thinking": True,
                        "price": {"input": 2.0, "output": 8.0}}})
    state = ShellState(s, lambda: s, settings=settings)
    provider.model = "scripted"  # type: ignore[attr-defined]  # switchable, as HTTP ones are
    read_line, _ = _lines("hello", "/thinking off", "/cost", "/model big", "/cost", "/exit")
    out = io.StringIO()
    await InteractiveShell(state, Console(file=out, width=200), read_line).run()
    text = out.getvalue()
    # 1000 fresh prompt tokens at $1/M, 1000 cached at $0.5/M, 500 completion at $4/M
    assert "scripted | 2500 tokens | context" in text and "$0.0035" in text
    assert "thinking: False" in text and "scripted | 2500 tokens" in text
    assert s.parts.settings is not None
    assert s.parts.compactor.window == 200_000 and "of 200000 tokens" in text
    assert s.parts.settings.extra_body["thinking"] == {"type": "enabled"}  # from [models.big]
    assert "cost: $0.0080" in text  # big's price; no cached_input price: cached at input
