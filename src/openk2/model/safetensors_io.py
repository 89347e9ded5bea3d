"""Safetensors checkpoints on disk: validated, memory-mapped, lazy reads and sharded writes.

A checkpoint is a directory holding either `model.safetensors` or shards listed by
`model.safetensors.index.json`, or a single `.safetensors` file. Every file header is parsed
and checked before any tensor is read, so a truncated or corrupt file fails with an error that
names the file (and the tensor) instead of a crash deep inside a load. Tensor data is read one
tensor at a time through `safe_open`, which memory-maps the file: a 1T-parameter checkpoint never
sits in memory twice.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import torch
from safetensors import safe_open

from openk2.model.config import read_config_json
from openk2.model.errors import CheckpointError

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit

# Safetensors dtype tags -> torch dtypes (the subset torch can hold).
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U64": torch.uint64,
    "U32": torch.uint32,
    "U16": torch.uint16,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """What a file header says about one tensor, without reading its data."""

    name: str
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# Header parsing and validation
# ---------------------------------------------------------------------------------------------


def read_header(file: Path) -> dict[str, TensorInfo]:
    """Parse and validate one safetensors header; return its tensors in file order."""
    if not file.is_file():
        raise CheckpointError("file does not exist", file=file)
    size = file.stat().st_size
    with file.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"truncated: {size} bytes, too short for a header", file=file)
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            raise CheckpointError(
                f"corrupt or truncated header: it claims {header_len} bytes, file has {size}",
                file=file,
            )
        raw = fh.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"corrupt header (not JSON): {exc}", file=file) from exc
    if not isinstance(header, dict):
        raise CheckpointError("corrupt header: not a JSON object", file=file)
    header.pop("__metadata__", None)
    infos = {name: _entry_info(file, name, entry) for name, entry in header.items()}
    _check_data_extent(file, header, size - 8 - header_len)
    return infos


def _entry_info(file: Path, name: str, entry: Any) -> TensorInfo:
    """Validate one header entry: known dtype, integer shape, offsets that fit its size."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise CheckpointError("corrupt header entry", file=file, tensor=name)
    dtype = DTYPES.get(entry["dtype"])
    if dtype is None:
        raise CheckpointError(f"unsupported dtype {entry['dtype']!r}", file=file, tensor=name)
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not _is_int_list(shape) or not _is_int_list(offsets) or len(offsets) != 2:
        raise CheckpointError("corrupt header entry (shape/offsets)", file=file, tensor=name)
    begin, end = offsets
    expected = math.prod(shape) * dtype.itemsize
    if begin < 0 or end - begin != expected:
        raise CheckpointError(
            f"header offsets span {end - begin} bytes, shape {shape} {entry['dtype']} "
            f"needs {expected}",
            file=file,
            tensor=name,
        )
    return TensorInfo(name=name, file=file, dtype=dtype, shape=tuple(shape))


def _is_int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and v >= 0 for v in value)


def _check_data_extent(file: Path, header: dict[str, Any], data_len: int) -> None:
    """The data section must hold exactly the bytes the header describes."""
    ends = {name: entry["data_offsets"][1] for name, entry in header.items()}
    last = max(ends, key=ends.__getitem__, default=None)
    needed = 0 if last is None else ends[last]
    if needed > data_len:
        raise CheckpointError(
            f"truncated: data section has {data_len} bytes, header needs {needed}",
            file=file,
            tensor=last,
        )
    if needed < data_len:
        raise CheckpointError(
            f"corrupt: {data_len - needed} bytes after the last tensor's data", file=file
        )


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


class CheckpointReader:
    """Lazy, memory-mapped access to every tensor of a single-file or sharded checkpoint."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.root = self.path if self.path.is_dir() else self.path.parent
        self._infos = _collect_infos(self.path)
        self._handles: dict[Path, Any] = {}

    @property
    def names(self) -> list[str]:
        """Every tensor name, in index (or file) order."""
        return list(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def info(self, name: str) -> TensorInfo:
        """Header facts about `name` (raises naming the checkpoint if it is absent)."""
        if name not in self._infos:
            raise CheckpointError("no such tensor in the checkpoint", file=self.path, tensor=name)
        return self._infos[name]

    def get(self, name: str, index: tuple[Any, ...] | None = None) -> torch.Tensor:
        """Read one tensor (or the `index` slice of it) from its memory-mapped file."""
        info = self.info(name)
        handle = self._handle(info.file)
        try:
            if index is None:
                return handle.get_tensor(name)
            return handle.get_slice(name)[index]
        except Exception as exc:  # safetensors raises its own types; name the file and tensor
            raise CheckpointError(f"cannot read data: {exc}", file=info.file, tensor=name) from exc

    def _handle(self, file: Path) -> Any:
        if file not in self._handles:
            try:
                self._handles[file] = safe_open(str(file), framework="pt", device="cpu")
            except Exception as exc:
                raise CheckpointError(f"cannot open: {exc}", file=file) from exc
        return self._handles[file]

    def close(self) -> None:
        """Drop the file handles (and their memory maps)."""
        self._handles.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _collect_infos(path: Path) -> dict[str, TensorInfo]:
    """Header facts for every tensor of a checkpoint path (file, indexed dir, or plain dir)."""
    if path.is_file():
        return read_header(path)
    if not path.is_dir():
        raise CheckpointError("no such checkpoint file or directory", file=path)
    if (path / INDEX_NAME).is_file():
        return _indexed_infos(path / INDEX_NAME)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"no {INDEX_NAME} and no *.safetensors files", file=path)
    return _merged_infos(files)


def _indexed_infos(index_file: Path) -> dict[str, TensorInfo]:
    """Resolve an index's weight_map against the headers of the files it names."""
    weight_map = _read_weight_map(index_file)
    headers: dict[str, dict[str, TensorInfo]] = {}
    for file_name in dict.fromkeys(weight_map.values()):
        file = index_file.parent / file_name
        if not file.is_file():
            tensor = next(t for t, f in weight_map.items() if f == file_name)
            raise CheckpointError(
                f"the index {index_file.name} names file '{file_name}', which does not exist",
                file=file,
                tensor=tensor,
            )
        headers[file_name] = read_header(file)
    infos: dict[str, TensorInfo] = {}
    for tensor, file_name in weight_map.items():
        if tensor not in headers[file_name]:
            raise CheckpointError(
                f"the index {index_file.name} places this tensor here, the file does not hold it",
                file=index_file.parent / file_name,
                tensor=tensor,
            )
        infos[tensor] = headers[file_name][tensor]
    _check_unindexed(headers, weight_map, index_file)
    return infos


def _read_weight_map(index_file: Path) -> dict[str, str]:
    try:
        index = json.loads(index_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"corrupt index (not JSON): {exc}", file=index_file) from exc
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise CheckpointError("corrupt index: no weight_map of name -> file", file=index_file)
    return weight_map


def _check_unindexed(
    headers: dict[str, dict[str, TensorInfo]], weight_map: dict[str, str], index_file: Path
) -> None:
    """A shard holding tensors the index does not list is a mix of checkpoints: refuse it."""
    for file_name, infos in headers.items():
        for tensor in infos:
            if weight_map.get(tensor) != file_name:
                raise CheckpointError(
                    f"the file holds a tensor that {index_file.name} does not place in it",
                    file=index_file.parent / file_name,
                    tensor=tensor,
                )


def _merged_infos(files: list[Path]) -> dict[str, TensorInfo]:
    """Headers of several un-indexed files; a name in two files is ambiguous."""
    infos: dict[str, TensorInfo] = {}
    for file in files:
        for name, info in read_header(file).items():
            if name in infos:
                raise CheckpointError(
                    f"tensor also in {infos[name].file.name}; without {INDEX_NAME} it is ambiguous",
                    file=file,
                    tensor=name,
                )
            infos[name] = info
    return infos


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's config.json as a dict (next to a single file, or in the directory)."""
    return read_config_json(path)


def iter_tensors(reader: CheckpointReader) -> Iterator[tuple[str, torch.Tensor]]:
    """Every raw tensor of a checkpoint, one at a time."""
    for name in reader.names:
        yield name, reader.get(name)
