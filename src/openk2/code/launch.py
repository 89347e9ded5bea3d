"""The shell launcher used with `--no-sandbox`: plain `bash -c`, with the user's full rights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class PlainLauncher:
    """No sandbox at all; the CLI prints a loud warning before using it."""

    sandboxed = False

    def __init__(self) -> None:
        self.bash = shutil.which("bash") or "/bin/sh"

    def argv(self, command: str, cwd: Path) -> list[str]:
        """`bash -c COMMAND` (the working directory is set by the caller)."""
        return [self.bash, "-c", command]

    def env(self) -> dict[str, str]:
        """The caller's own environment, unchanged."""
        return dict(os.environ)

    def close(self) -> None:
        """Nothing to stop."""
