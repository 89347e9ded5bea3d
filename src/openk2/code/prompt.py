"""The system prompt: the agent's instructions, facts about the machine, and AGENTS.md files.

Every `AGENTS.md` from the git root down to the workspace is appended (outermost first), as
kimi-cli does, so repository-wide rules come before those of the subdirectory. No directory
listing is added: in large trees it overflowed kimi-cli's context (kimi-cli#1809).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from openk2.code.workspace import Workspace

MAX_AGENTS_MD_CHARS = 32_000


def system_prompt(workspace: Workspace, *, sandboxed: bool) -> str:
    """The full system prompt for a session in `workspace`."""
    template = (Path(__file__).parent / "agents" / "default" / "system.md").read_text("utf-8")
    text = template.format(
        workspace=workspace.root,
        extra_dirs=", ".join(map(str, workspace.extra)) or "none",
        os=f"{platform.system()} {platform.release()}",
        date=time.strftime("%Y-%m-%d"),
        sandbox="on (writes only inside the working directories, no network)" if sandboxed
        else "OFF (commands run with your full user rights)",
    )
    docs = agents_md_files(workspace.root)
    for path in docs:
        body = path.read_text(encoding="utf-8", errors="replace")[:MAX_AGENTS_MD_CHARS]
        text += f"\n\n# Project instructions from {path}\n{body.strip()}"
    return text


def git_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` that holds `.git`."""
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def agents_md_files(workspace: Path) -> list[Path]:
    """AGENTS.md files from the git root (or the workspace, outside git) down to `workspace`."""
    top = git_root(workspace) or workspace
    chain = [workspace, *workspace.parents]
    dirs = list(reversed(chain[: chain.index(top) + 1]))
    return [d / "AGENTS.md" for d in dirs if (d / "AGENTS.md").is_file()]
