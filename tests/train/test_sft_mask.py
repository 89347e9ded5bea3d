"""SFT with the real tokenizer and K2.6 template: loss on exactly the assistant-generated tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openk2.tokenizer import default_tokenizer
from openk2.train.config import DataConfig, TrainConfig
from openk2.train.data import IGNORE, ChatRows, iter_chats
from openk2.train.synthetic import generate_tasks, training_records, write_jsonl
from openk2.train.text import load_codec


def _runs(positions: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


@pytest.mark.parametrize("family", ["file_sum", "swarm"])
def test_targets_are_exactly_the_assistant_turns(tmp_path: Path, family: str) -> None:
    task = generate_tasks(1, seed=11, families=[family], followup_rate=1.0)[0]
    path = tmp_path / "chats.jsonl"
    write_jsonl(path, [next(training_records([task]))])
    codec = load_codec(TrainConfig(data=DataConfig(kind="sft", train_files=[str(path)])))
    (chat,) = list(iter_chats([path], codec.render, codec.encode))
    rows = ChatRows.build([chat], seq_len=len(chat.ids) - 1, pad_id=codec.pad_id, pack=False)
    inputs, labels = rows[0]
    assert inputs.tolist() == chat.ids[:-1]
    trained = [t + 1 for t, y in enumerate(labels.tolist()) if y != IGNORE]
    assert all(labels[t - 1] == chat.ids[t] for t in trained)
    tok = default_tokenizer()
    runs = [tok.decode(chat.ids[r[0] : r[-1] + 1]) for r in _runs(trained)]
    assistants = [m for m in task.messages if m["role"] == "assistant"]
    assert len(runs) == len(assistants)
    for text, message in zip(runs, assistants, strict=True):
        assert text.startswith("<think>") and text.endswith("<|im_end|>")
        assert message["content"] in text
        for call in message.get("tool_calls", []):
            args = call["function"]["arguments"]
            assert f"{call['id']}<|tool_call_argument_begin|>{args}<|tool_call_end|>" in text
    context = tok.decode([i for t, i in enumerate(chat.ids) if t not in set(trained)])
    for message in task.messages:
        if message["role"] in ("system", "user", "tool"):
            assert message["content"] in context
    assert "<|im_assistant|>assistant<|im_middle|>" in context
    assert json.loads(json.dumps(task.tools)) == task.tools
