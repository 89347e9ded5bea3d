"""Test doubles for the coding CLI: a gate with fixed answers and session builders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from openk2.agent.llm.scripted import ScriptedProvider, Step
from openk2.code.app import CodeSession, Emit
from openk2.code.build import Safety, open_session
from openk2.code.config import CodeSettings
from openk2.code.gate import Action, DenyAsks, Verdict
from openk2.code.launch import PlainLauncher
from openk2.code.sessions import SessionStore
from openk2.code.workspace import Workspace


class FixedGate:
    """Answers from `rule(action)` (default: allow everything); records what it saw."""

    def __init__(self, rule: Callable[[Action], Verdict] | None = None) -> None:
        self.rule = rule or (lambda a: Verdict("allow", "test"))
        self.seen: list[Action] = []

    async def review(self, action: Action) -> Verdict:
        self.seen.append(action)
        return self.rule(action)

    async def settled(self, action: Action, verdict: Verdict) -> None:
        self.settled_with = verdict

    async def after(self, action: Action, tool_input: dict, output: str) -> str | None:
        return None

    async def stop(self) -> str | None:
        return None


def session(
    tmp: Path, script: Sequence[Step], *, gate: FixedGate | None = None, resume: str | None = None,
    emit: Emit | None = None, **settings: object,
) -> tuple[CodeSession, ScriptedProvider, Workspace]:
    """A session over `tmp/ws` with sessions in `tmp/state`, driven by `script`."""
    ws_dir = tmp / "ws"
    ws_dir.mkdir(exist_ok=True)
    ws = Workspace.open(ws_dir)
    provider = ScriptedProvider(list(script))
    safety = Safety(gate=gate or FixedGate(), approver=DenyAsks(), launcher=PlainLauncher())
    s = open_session(CodeSettings(model="scripted", **settings), ws, provider=provider,  # type: ignore[arg-type]
                     safety=safety, store=SessionStore(tmp / "state"), resume=resume, emit=emit)
    return s, provider, ws
