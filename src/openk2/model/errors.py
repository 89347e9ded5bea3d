"""Errors about files on disk that the user can fix: a checkpoint or its config.json.

Stdlib only, so reading a config (`openk2 inspect`) never imports torch. Every message starts
with the file (and tensor) it is about, so a CLI can print it as is.
"""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as asked; the message names the file and tensor."""

    def __init__(self, problem: str, *, file: Path | str | None = None, tensor: str | None = None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.tensor = tensor
        where = [part for part in (self.file, tensor and f"tensor '{tensor}'") if part]
        super().__init__(f"{': '.join(where)}: {problem}" if where else problem)


class ConfigError(CheckpointError):
    """A config.json that is unreadable, malformed, or describes a model openk2 cannot build."""
