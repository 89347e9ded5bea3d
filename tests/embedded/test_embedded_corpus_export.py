"""The corpus mixture, and exporting a trained model into the shipped layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from openk2.agent.swarm.prompts import ORCHESTRATOR_PROMPT
from openk2.embedded import export as export_mod
from openk2.embedded.corpus import CorpusSpec, write_corpus
from openk2.embedded.export import export_model
from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT, WORKER_PROMPT
from openk2.model import build_model, get_preset
from openk2.model.weights import load_model, save_model
from openk2.tokenizer.resolve import copy_tokenizer, resolve_tokenizer
from openk2.train.synthetic import read_tasks


def test_corpus_mixes_client_swarm_and_worker_chats(tmp_path: Path) -> None:
    counts = write_corpus(tmp_path, CorpusSpec(client=10, swarm=4, heldout=3, seed=5))
    assert counts == {"train": 10 + 4 * 2, "heldout_client": 3, "heldout_swarm": 3}
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").open()]
    systems = [r["messages"][0]["content"] for r in rows]
    assert systems.count(CLIENT_SYSTEM_PROMPT) == 10
    assert systems.count(ORCHESTRATOR_PROMPT) == 4
    assert systems.count(WORKER_PROMPT) == 4
    train_requests = {r["messages"][1]["content"] for r in rows}
    for kind in ("client", "swarm"):
        for task in read_tasks(tmp_path / f"heldout_{kind}.jsonl"):
            assert task.split == "heldout" and task.prompt[-1]["content"] not in train_requests


def _final(tmp_path: Path) -> Path:
    final = tmp_path / "final"
    save_model(build_model(get_preset("debug"), seed=1), final)
    copy_tokenizer(resolve_tokenizer(), final)  # as every training run's final/ has
    return final


def test_export_writes_bf16_weights_and_tokenizer(tmp_path: Path) -> None:
    out = tmp_path / "shipped"
    sizes = export_model(_final(tmp_path), out)
    assert set(sizes) == {"config.json", "generation_config.json", "model.safetensors",
                          "tiktoken.model", "tokenizer_config.json"}
    assert json.loads((out / "generation_config.json").read_text()) == {"temperature": 0.0}
    model = load_model(out)
    assert model.lm_head.weight.dtype == torch.bfloat16
    reference = load_model(tmp_path / "final")
    assert torch.equal(model.lm_head.weight, reference.lm_head.weight.to(torch.bfloat16))


def test_export_refuses_a_directory_without_tokenizer(tmp_path: Path) -> None:
    final = tmp_path / "bare"
    save_model(build_model(get_preset("debug"), seed=1), final)
    with pytest.raises(FileNotFoundError, match=r"bare has no tokenizer: tiktoken.model"):
        export_model(final, tmp_path / "shipped")


def test_export_over_budget_leaves_the_old_model(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "shipped"
    export_model(_final(tmp_path), out)
    before = (out / "model.safetensors").read_bytes()
    monkeypatch.setattr(export_mod, "MAX_SHIPPED_BYTES", 1000)
    with pytest.raises(ValueError, match="over the 0 MiB package budget"):
        export_model(_final(tmp_path), out)
    assert (out / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "shipped.partial").exists()
