"""Shell: one bash command in a fresh process, inside the sandbox the launcher builds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, ShellLauncher, clip, description
from openk2.code.workspace import Workspace

MAX_TIMEOUT = 300


class Params(BaseModel):
    command: str = Field(description="The bash command to run.")
    timeout: int = Field(
        default=60, ge=1, le=MAX_TIMEOUT,
        description=f"Seconds before the command is killed (max {MAX_TIMEOUT}).")


class Shell(CodeTool[Params]):
    """Runs commands in their own process group, so a timeout kills their children too."""

    name = "Shell"
    description = description(__file__, "shell")
    Params = Params

    def __init__(self, workspace: Workspace, launcher: ShellLauncher) -> None:
        self.workspace = workspace
        self.launcher = launcher

    def action(self, params: Params) -> Action:
        return Action(self.name, "exec", f"run command `{params.command}`",
                      command=params.command, output="shell", origin=f"`{params.command}`")

    async def run(self, params: Params) -> ToolResult:
        if not params.command.strip():
            return ToolError("the command is empty.")
        argv = self.launcher.argv(params.command, self.workspace.root)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=self.workspace.root, env=self.launcher.env(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), params.timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return ToolError(f"the command did not finish within {params.timeout} s and was "
                             "killed; raise `timeout` or run something shorter.", brief="timeout")
        finally:
            if proc.returncode is None:  # cancelled (Ctrl-C, run stopped)
                _kill_group(proc.pid)
        text = out.decode("utf-8", errors="replace")
        code = proc.returncode
        body = clip(text) if text else "(no output)"
        if code != 0:
            return ToolError(f"the command exited with code {code}:\n{body}", brief=f"exit {code}")
        return ToolOk(body, brief="exit 0")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
