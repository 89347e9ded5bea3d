"""What the consumer app offers: server-side tools (opt-in) and where agent-mode runs live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openk2.agent.tools.base import Toolset

DEMO = "demo"
"""`--tools demo`: the shipped demo workspace (what `make web` serves)."""


@dataclass(kw_only=True, slots=True)
class AppConfig:
    """Options of the web app mounted on `openk2 serve`."""

    workspace: Path | None = None
    """Directory (or world JSON) the server-side tools work on; None = no server-side tools."""
    make_tools: Callable[[Path], tuple[Toolset, list[str]]] | None = None
    """Builds the tools over `workspace` and lists its readable files; the CLI (the composition
    root) passes `cli.workspace.workspace_toolset`, which binds the embedded model's tool world."""
    runs_dir: Path = field(default_factory=lambda: Path("runs"))
    """Where agent-mode swarm runs are kept (durable, resumable after a restart)."""
    swarm_max_agents: int = 32
    """Sub-agents per agent-mode run."""
    swarm_max_steps: int = 80
    """LLM steps per agent-mode run, all agents together."""
    swarm_agent_max_steps: int = 6
    """Steps per sub-agent."""
    chat_max_steps: int = 8
    """Model calls per tool-chat turn (each tool round is one)."""


def parse_tools_option(value: str | None) -> Path | None:
    """The workspace of `--tools workspace=DIR` (or `--tools demo`), None when absent.

    The form is explicit (`workspace=`) so that running tools on the server is always a
    visible, deliberate choice; a directory that does not exist is refused here.
    """
    if value is None:
        return None
    if value.strip() == DEMO:
        from openk2.embedded.demo import demo_workspace

        return demo_workspace()
    kind, sep, path = value.partition("=")
    if kind.strip() != "workspace" or not sep or not path.strip():
        raise ValueError(f"--tools expects workspace=DIR, got {value!r}")
    workspace = Path(path.strip()).expanduser()
    if not workspace.exists():
        raise ValueError(f"--tools workspace {workspace} does not exist")
    return workspace
