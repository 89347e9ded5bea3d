"""Training rows from text (packed pretraining) or chats (SFT with assistant-only loss).

Every dataset yields rows `(input_ids[T], labels[T])` where labels[t] is the token that follows
input_ids[t], or IGNORE where no loss applies. Tokenisation is injected (`encode`, `render`), so
this module depends on no particular tokenizer and tests can use a toy one.

- Pretraining: documents from .txt files (one document per file) or .jsonl files (a "text" field
  per line) are tokenised, each followed by EOS, concatenated, and cut into windows of T+1.
- SFT: OpenAI fine-tuning chats (.jsonl with "messages" and optional "tools") or ShareGPT lines
  (`chat_formats.py` checks and normalises both) are rendered with the
  K2.6 template into segments flagged trainable exactly for assistant-generated text (reasoning,
  content, tool calls, the closing <|im_end|>); a token is a target iff its segment is trainable.
  Whole chats are packed into rows (or one per row) and the tail is padded with IGNORE labels.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from openk2.train.chat_formats import chat_from_line

IGNORE = -100
"""Label value that `cross_entropy(ignore_index=IGNORE)` skips."""


class Segment(Protocol):
    """A piece of rendered chat text and whether the model is trained to produce it."""

    text: str
    trainable: bool


Encode = Callable[[str], list[int]]
Render = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], Sequence[Segment]]


def expand_files(patterns: Iterable[str]) -> list[Path]:
    """Resolve file paths and globs, in order; error on a pattern that matches nothing."""
    out: list[Path] = []
    for pattern in patterns:
        matches = (
            sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        )
        paths = [Path(m) for m in matches if Path(m).is_file()]
        if not paths:
            raise FileNotFoundError(f"no training file matches {pattern!r}")
        out.extend(paths)
    if not out:
        raise ValueError("data.train_files is empty")
    return out


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is an error naming it."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def iter_documents(paths: Iterable[Path]) -> Iterator[str]:
    """Plain-text documents: a whole .txt file, or each line's "text" of a .jsonl file."""
    for path in paths:
        if path.suffix == ".jsonl":
            for lineno, obj in iter_jsonl(path):
                text = obj.get("text")
                if not isinstance(text, str):
                    raise ValueError(f"{path}:{lineno}: pretraining lines need a string 'text'")
                yield text
        else:
            yield path.read_text(encoding="utf-8")


class PackedText:
    """One token stream cut into overlapping-by-one windows: rows of T inputs and T targets."""

    def __init__(self, tokens: torch.Tensor, seq_len: int) -> None:
        if tokens.numel() < seq_len + 1:
            raise ValueError(
                f"only {tokens.numel()} tokens of text; need at least seq_len + 1 = {seq_len + 1}"
            )
        self.tokens, self.seq_len = tokens, seq_len

    @classmethod
    def from_files(
        cls, paths: Iterable[Path], encode: Encode, eos_id: int, seq_len: int
    ) -> PackedText:
        paths = list(paths)
        ids: list[int] = []
        for doc in iter_documents(paths):
            ids.extend(encode(doc))
            ids.append(eos_id)
        try:
            return cls(torch.tensor(ids, dtype=torch.int32), seq_len)
        except ValueError as exc:
            names = ", ".join(str(p) for p in paths)
            raise ValueError(f"{names}: {exc}; add text or lower seq_len") from exc

    def __len__(self) -> int:
        return (self.tokens.numel() - 1) // self.seq_len

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        window = self.tokens[i * self.seq_len : (i + 1) * self.seq_len + 1].long()
        return window[:-1], window[1:]


@dataclass(slots=True)
class EncodedChat:
    """A rendered, tokenised chat: ids and a per-token flag 'the model must produce this'."""

    ids: list[int]
    trainable: list[bool]


def encode_chat(segments: Sequence[Segment], encode: Encode) -> EncodedChat:
    """Tokenise segment by segment, so each token inherits exactly its segment's flag."""
    ids: list[int] = []
    trainable: list[bool] = []
    for seg in segments:
        seg_ids = encode(seg.text)
        ids.extend(seg_ids)
        trainable.extend([bool(seg.trainable)] * len(seg_ids))
    return EncodedChat(ids=ids, trainable=trainable)


def chat_labels(chat: EncodedChat) -> tuple[list[int], list[int]]:
    """(inputs, labels) of one chat: labels[t] = ids[t+1] where that token is trainable."""
    labels = [
        nxt if train else IGNORE
        for nxt, train in zip(chat.ids[1:], chat.trainable[1:], strict=True)
    ]
    return chat.ids[:-1], labels


class ChatRows:
    """Whole chats placed into fixed-length rows; padding carries IGNORE labels."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, dropped: int) -> None:
        self.inputs, self.labels, self.dropped = inputs, labels, dropped

    @classmethod
    def build(cls, chats: Iterable[EncodedChat], seq_len: int, pad_id: int, pack: bool) -> ChatRows:
        """Pack chats in order (next-fit) or one per row; chats longer than a row are dropped."""
        rows: list[tuple[list[int], list[int]]] = []
        dropped = 0
        for chat in chats:
            inputs, labels = chat_labels(chat)
            if len(inputs) > seq_len:
                dropped += 1
                continue
            if pack and rows and len(rows[-1][0]) + len(inputs) <= seq_len:
                rows[-1][0].extend(inputs)
                rows[-1][1].extend(labels)
            else:
                rows.append((list(inputs), list(labels)))
        if not rows:
            raise ValueError(f"no chat fits in seq_len={seq_len} ({dropped} too long)")
        x = torch.full((len(rows), seq_len), pad_id, dtype=torch.int32)
        y = torch.full((len(rows), seq_len), IGNORE, dtype=torch.int32)
        for r, (inputs, labels) in enumerate(rows):
            x[r, : len(inputs)] = torch.tensor(inputs, dtype=torch.int32)
            y[r, : len(labels)] = torch.tensor(labels, dtype=torch.int32)
        return cls(x, y, dropped)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[i].long(), self.labels[i].long()


def iter_chats(paths: Iterable[Path], render: Render, encode: Encode) -> Iterator[EncodedChat]:
    """Render and tokenise every chat of the given .jsonl files (OpenAI or ShareGPT lines)."""
    for path in paths:
        for lineno, obj in iter_jsonl(path):
            try:
                messages, tools = chat_from_line(obj)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
            try:
                segments = render(messages, tools)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: cannot render chat ({exc})") from exc
            yield encode_chat(segments, encode)


class RowDataset(Protocol):
    """What `BatchLoader` needs: a length and (inputs, labels) rows of equal length."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]: ...


class BatchLoader:
    """Seeded, resumable batches: the order of epoch e is randperm(seed + e).

    The whole position is (epoch, cursor), so `state_dict()` taken after any batch restores the
    exact stream of following batches.
    """

    def __init__(self, rows: RowDataset, batch_size: int, *, seed: int, shuffle: bool) -> None:
        if len(rows) < batch_size:
            raise ValueError(f"dataset has {len(rows)} rows, fewer than batch_size={batch_size}")
        self.rows, self.batch_size, self.seed, self.shuffle = rows, batch_size, seed, shuffle
        self.epoch, self.cursor = 0, 0
        self._order = self._permutation()

    def _permutation(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(len(self.rows))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.rows), generator=gen)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T] inputs and labels; starts a new epoch when the current one runs out."""
        if self.cursor + self.batch_size > len(self.rows):
            self.epoch, self.cursor = self.epoch + 1, 0
            self._order = self._permutation()
        idx = self._order[self.cursor : self.cursor + self.batch_size].tolist()
        self.cursor += self.batch_size
        pairs = [self.rows[i] for i in idx]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor, "rows": len(self.rows)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["rows"] != len(self.rows):
            raise ValueError(
                f"checkpoint was taken on {state['rows']} rows but the data now has "
                f"{len(self.rows)}; resuming would not reproduce the run"
            )
        self.epoch, self.cursor = state["epoch"], state["cursor"]
        self._order = self._permutation()
