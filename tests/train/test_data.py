"""Data: packed pretraining windows, assistant-only SFT labels, resumable batch order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from openk2.train.data import (
    IGNORE,
    BatchLoader,
    ChatRows,
    EncodedChat,
    PackedText,
    encode_chat,
    expand_files,
    iter_chats,
)


def _encode(text: str) -> list[int]:
    """Toy byte tokenizer: one id per UTF-8 byte."""
    return list(text.encode())


@dataclass
class _Seg:
    text: str
    trainable: bool


def _render(messages: list[dict[str, Any]], tools: Any = None) -> list[_Seg]:
    """Toy template: assistant text is trainable, everything else is context."""
    segments = []
    for m in messages:
        segments.append(_Seg(f"<{m['role']}>", False))
        segments.append(_Seg(m["content"] + "|", m["role"] == "assistant"))
    return segments


def test_packed_text_windows_shift_by_one(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("abcdefgh")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "xyz"}) + "\n\n")
    ds = PackedText.from_files(
        expand_files([str(tmp_path / "*.txt"), str(tmp_path / "b.jsonl")]),
        _encode,
        eos_id=0,
        seq_len=4,
    )
    stream = _encode("abcdefgh") + [0] + _encode("xyz") + [0]
    assert len(ds) == (len(stream) - 1) // 4
    x, y = ds[1]
    assert x.tolist() == stream[4:8] and y.tolist() == stream[5:9]


def test_sft_labels_are_exactly_the_assistant_tokens(tmp_path: Path) -> None:
    chat = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "yo",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "t"},
            {"role": "assistant", "content": "ok"},
        ]
    }
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps(chat) + "\n")
    (enc,) = list(iter_chats([path], _render, _encode))
    text = "<user>hi|<assistant>yo|<tool>t|<assistant>ok|"
    assert enc.ids == _encode(text)
    rows = ChatRows.build([enc], seq_len=64, pad_id=0, pack=True)
    x, y = rows[0]
    targets = bytes(t for t in y.tolist() if t != IGNORE).decode()
    assert targets == "yo|ok|"
    # each target sits right after its predecessor token in the input
    for t in range(len(enc.ids) - 1):
        assert y[t] == (enc.ids[t + 1] if enc.trainable[t + 1] else IGNORE)
    assert (y[len(enc.ids) - 1 :] == IGNORE).all() and (x[len(enc.ids) - 1 :] == 0).all()


def test_packing_keeps_whole_chats_and_drops_oversized() -> None:
    chats = [EncodedChat(ids=[1] * n, trainable=[True] * n) for n in (5, 5, 9, 30)]
    packed = ChatRows.build(chats, seq_len=10, pad_id=0, pack=True)
    assert len(packed) == 2 and packed.dropped == 1
    assert (packed.labels[0] != IGNORE).sum() == 8  # two chats of 4 targets each
    single = ChatRows.build(chats, seq_len=10, pad_id=0, pack=False)
    assert len(single) == 3
    with pytest.raises(ValueError, match="no chat fits"):
        ChatRows.build(chats[3:], seq_len=10, pad_id=0, pack=True)


def test_segment_flags_follow_tokens() -> None:
    enc = encode_chat([_Seg("ab", False), _Seg("cd", True)], _encode)
    assert enc.trainable == [False, False, True, True]


def test_loader_order_is_seeded_and_resumable() -> None:
    rows = ChatRows(torch.arange(40).view(20, 2), torch.arange(40).view(20, 2), 0)
    a = BatchLoader(rows, 3, seed=1, shuffle=True)
    first = [a.next_batch()[0] for _ in range(5)]
    state = a.state_dict()
    after = [a.next_batch()[0] for _ in range(10)]  # crosses an epoch boundary
    b = BatchLoader(rows, 3, seed=1, shuffle=True)
    b.load_state_dict(state)
    resumed = [b.next_batch()[0] for _ in range(10)]
    assert all(torch.equal(p, q) for p, q in zip(after, resumed, strict=True))
    assert not torch.equal(first[0], BatchLoader(rows, 3, seed=2, shuffle=True).next_batch()[0])
    with pytest.raises(ValueError, match="rows"):
        BatchLoader(
            ChatRows(rows.inputs[:5], rows.labels[:5], 0), 3, seed=1, shuffle=True
        ).load_state_dict(state)


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no training file"):
        expand_files([str(tmp_path / "missing*.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: SFT lines need"):
        list(iter_chats([bad], _render, _encode))
    bad.write_text("{oops\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: invalid JSON"):
        list(iter_chats([bad], _render, _encode))
    bad.write_text('{"messages": [{"content": "x"}]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: messages\[0\].role is None"):
        list(iter_chats([bad], _render, _encode))
    txt = tmp_path / "short.jsonl"
    txt.write_text('{"body": "x"}\n')
    with pytest.raises(ValueError, match="'text'"):
        PackedText.from_files([txt], _encode, eos_id=0, seq_len=4)
    txt.write_text('{"text": "x"}\n')
    with pytest.raises(ValueError, match="seq_len"):
        PackedText.from_files([txt], _encode, eos_id=0, seq_len=4)
