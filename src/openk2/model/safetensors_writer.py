"""Writing safetensors checkpoints: size-bounded shards, their index, no stale files left behind."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import TracebackType
from typing import Self

import torch
from safetensors.torch import save_file

from openk2.model.safetensors_io import INDEX_NAME, SINGLE_NAME

# ---------------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string like '5GB' (10^9) or '512MiB' (2^20)."""
    if isinstance(size, int):
        value = size
    else:
        match = _SIZE_RE.match(size)
        if match is None:
            raise ValueError(f"cannot parse size {size!r}; use e.g. 5GB, 512MiB or 1000000")
        value = int(float(match[1]) * _UNITS[(match[2] or "B").lower()])
    if value <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return value


class ShardedWriter:
    """Stream tensors into size-bounded safetensors shards, then name them and write the index.

    Shards are first written under temporary names and only renamed once all are complete, so
    a failure leaves any previous checkpoint in the directory intact. One shard is written as
    `model.safetensors` without an index; several as `model-0000k-of-0000n.safetensors` plus
    `model.safetensors.index.json`.
    """

    def __init__(self, out_dir: str | os.PathLike[str], *, max_shard_size: int | str) -> None:
        self.out_dir = Path(out_dir)
        self.max_bytes = parse_size(max_shard_size)
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._parts: list[tuple[Path, list[str]]] = []
        self._total_bytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Queue one tensor; flushes the current shard first if it would grow too large."""
        if name in self._pending or any(name in names for _, names in self._parts):
            raise ValueError(f"tensor '{name}' written twice")
        nbytes = tensor.numel() * tensor.element_size()
        if self._pending and self._pending_bytes + nbytes > self.max_bytes:
            self._flush()
        self._pending[name] = _standalone(tensor)
        self._pending_bytes += nbytes
        self._total_bytes += nbytes

    def _flush(self) -> None:
        part = self.out_dir / f".openk2-part-{len(self._parts):05d}.safetensors.tmp"
        save_file(self._pending, str(part), metadata={"format": "pt"})
        self._parts.append((part, list(self._pending)))
        self._pending, self._pending_bytes = {}, 0

    def finish(self) -> list[Path]:
        """Write the last shard, replace any previous checkpoint files, write the index."""
        if self._pending or not self._parts:
            self._flush()
        _remove_previous_checkpoint(self.out_dir)
        count = len(self._parts)
        finals = [self.out_dir / _shard_name(k, count) for k in range(count)]
        for (part, _), final in zip(self._parts, finals, strict=True):
            part.replace(final)
        if count > 1:
            weight_map = {
                name: final.name
                for (_, names), final in zip(self._parts, finals, strict=True)
                for name in names
            }
            index = {"metadata": {"total_size": self._total_bytes}, "weight_map": weight_map}
            (self.out_dir / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
        return finals

    def abort(self) -> None:
        """Delete the temporary shards written so far."""
        for part, _ in self._parts:
            part.unlink(missing_ok=True)
        self._parts.clear()

    def __enter__(self) -> Self:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


def _standalone(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU, contiguous tensor that owns its storage (safetensors refuses shared storage)."""
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
        tensor = tensor.clone()
    return tensor


def _shard_name(k: int, count: int) -> str:
    return SINGLE_NAME if count == 1 else f"model-{k + 1:05d}-of-{count:05d}.safetensors"


def _remove_previous_checkpoint(out_dir: Path) -> None:
    """Delete the files of an earlier checkpoint in `out_dir` so no stale shard survives."""
    stale = [out_dir / SINGLE_NAME, out_dir / INDEX_NAME]
    stale += list(out_dir.glob("model-*-of-*.safetensors"))
    for file in stale:
        file.unlink(missing_ok=True)
