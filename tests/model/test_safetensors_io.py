"""Safetensors IO: sharded writes, lazy reads, and clear errors for damaged checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from openk2.model.safetensors_io import (
    INDEX_NAME,
    SINGLE_NAME,
    CheckpointError,
    CheckpointReader,
    read_header,
)
from openk2.model.safetensors_writer import ShardedWriter, parse_size


def _tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "a.weight": torch.randn(64, 32),  # 8 KiB
        "b.weight": torch.randn(64, 32, dtype=torch.float64).to(torch.bfloat16),
        "c.bias": torch.arange(10, dtype=torch.int32),
        "d.weight": torch.randn(3, 5, 7),
    }


def _write(out: Path, tensors: dict[str, torch.Tensor], max_shard_size: int | str) -> list[Path]:
    with ShardedWriter(out, max_shard_size=max_shard_size) as writer:
        for name, tensor in tensors.items():
            writer.add(name, tensor)
    return sorted(out.glob("*.safetensors"))


def test_sharded_write_and_lazy_read_round_trip(tmp_path: Path) -> None:
    tensors = _tensors()
    files = _write(tmp_path, tensors, max_shard_size=8192)
    assert [f.name for f in files] == [f"model-0000{k}-of-00002.safetensors" for k in (1, 2)]
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert index["weight_map"]["a.weight"] == "model-00001-of-00002.safetensors"
    assert index["weight_map"]["d.weight"] == "model-00002-of-00002.safetensors"
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in tensors.values())
    with CheckpointReader(tmp_path) as reader:
        assert reader.names == list(tensors)
        assert reader.info("b.weight").dtype == torch.bfloat16
        assert reader.info("d.weight").shape == (3, 5, 7)
        for name, tensor in tensors.items():
            assert torch.equal(reader.get(name), tensor)
        assert torch.equal(reader.get("d.weight", (1, slice(2, 4))), tensors["d.weight"][1, 2:4])


def test_single_shard_is_model_safetensors_without_index(tmp_path: Path) -> None:
    files = _write(tmp_path, _tensors(), max_shard_size="1GB")
    assert [f.name for f in files] == [SINGLE_NAME]
    assert not (tmp_path / INDEX_NAME).exists()
    with CheckpointReader(tmp_path / SINGLE_NAME) as reader:  # a file path works too
        assert len(reader.names) == 4


def test_rewrite_replaces_stale_shards(tmp_path: Path) -> None:
    _write(tmp_path, _tensors(), max_shard_size=8192)
    _write(tmp_path, {"x": torch.zeros(2)}, max_shard_size="5GB")
    assert sorted(p.name for p in tmp_path.iterdir()) == [SINGLE_NAME]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    _write(tmp_path, _tensors(), max_shard_size=8192)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="boom"), ShardedWriter(tmp_path, max_shard_size=10) as w:
        w.add("x", torch.zeros(4))
        w.add("y", torch.zeros(4))  # flushes a temporary shard
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_views_are_saved_as_standalone_tensors(tmp_path: Path) -> None:
    base = torch.randn(4, 8)
    _write(tmp_path, {"top": base[:2], "bottom": base[2:]}, max_shard_size="1GB")
    with CheckpointReader(tmp_path) as reader:
        assert torch.equal(reader.get("bottom"), base[2:])


def test_parse_size() -> None:
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size(123) == 123
    with pytest.raises(ValueError, match="cannot parse"):
        parse_size("lots")


def test_truncated_file_names_file_and_tensor(tmp_path: Path) -> None:
    file = tmp_path / SINGLE_NAME
    save_file({"a": torch.zeros(100), "b": torch.zeros(100)}, str(file))
    data = file.read_bytes()
    file.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="truncated") as info:
        CheckpointReader(tmp_path)
    assert info.value.file == str(file) and info.value.tensor == "b"
    assert SINGLE_NAME in str(info.value) and "'b'" in str(info.value)
    file.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="too short"):
        read_header(file)


def test_corrupt_header_is_reported(tmp_path: Path) -> None:
    file = tmp_path / "x.safetensors"
    header = b"{not json"
    file.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="not JSON"):
        read_header(file)
    file.write_bytes((10**12).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="corrupt or truncated header"):
        read_header(file)
    entry = {"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}
    raw = json.dumps(entry).encode()
    file.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(8))
    with pytest.raises(CheckpointError, match="needs 16") as info:
        read_header(file)
    assert info.value.tensor == "t"


def test_index_naming_a_missing_file(tmp_path: Path) -> None:
    _write(tmp_path, _tensors(), max_shard_size=8192)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="does not exist") as info:
        CheckpointReader(tmp_path)
    assert info.value.tensor == "b.weight"
    assert info.value.file is not None and info.value.file.endswith(
        "model-00002-of-00002.safetensors"
    )


def test_index_naming_a_tensor_the_file_lacks(tmp_path: Path) -> None:
    _write(tmp_path, _tensors(), max_shard_size=8192)
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    index["weight_map"]["ghost.weight"] = "model-00001-of-00002.safetensors"
    (tmp_path / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="does not hold it") as info:
        CheckpointReader(tmp_path)
    assert info.value.tensor == "ghost.weight"


def test_shard_with_unindexed_tensor_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, _tensors(), max_shard_size=8192)
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    del index["weight_map"]["c.bias"]
    (tmp_path / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="does not place") as info:
        CheckpointReader(tmp_path)
    assert info.value.tensor == "c.bias"


def test_unindexed_files_with_a_duplicate_name(tmp_path: Path) -> None:
    save_file({"a": torch.zeros(2)}, str(tmp_path / "one.safetensors"))
    save_file({"a": torch.ones(2)}, str(tmp_path / "two.safetensors"))
    with pytest.raises(CheckpointError, match="ambiguous"):
        CheckpointReader(tmp_path)


def test_missing_paths_and_names(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        CheckpointReader(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no model.safetensors.index.json"):
        CheckpointReader(tmp_path)
    _write(tmp_path, {"a": torch.zeros(1)}, max_shard_size="1GB")
    with CheckpointReader(tmp_path) as reader, pytest.raises(CheckpointError, match="no such"):
        reader.get("b")
