"""The GGUF vocabulary: every id maps back to openk2's token, and BPE over the written merges
(llama.cpp's algorithm) tokenizes text exactly as openk2's tiktoken tokenizer does."""

from __future__ import annotations

import base64
from pathlib import Path

import gguf
import pytest

from openk2.embedded import model_dir
from openk2.export.gguf import vocab
from openk2.tokenizer.pattern import reference_split
from openk2.tokenizer.tokenizer import Tokenizer

TOKENIZER = Tokenizer.from_pretrained(model_dir())
SAMPLES = ["Hello, world! It's 2026 and we're testing 12345 tokens.",
           "def f(x):\n    return x ** 2  # squared\n\n\n",
           "中文分词测试，Kimi K2 模型。 Ünïcödé façade — naïve café",
           "  leading spaces\ttabs\r\nCRLF 🙂 emoji 𝔘𝔫𝔦"]


def _reader_vocab(path: Path) -> tuple[list[str], list[int], list[str]]:
    fields = gguf.GGUFReader(path).fields
    return (fields["tokenizer.ggml.tokens"].contents(),
            fields["tokenizer.ggml.token_type"].contents(),
            fields["tokenizer.ggml.merges"].contents())


def test_byte_table_is_a_bijection_onto_printable_characters() -> None:
    table = vocab.byte_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert vocab.text_bytes(vocab.token_text(bytes(range(256)))) == bytes(range(256))


def test_every_id_maps_back_to_openk2s_token(embedded_gguf) -> None:
    tokens, types, _ = _reader_vocab(embedded_gguf("q8_0"))
    assert len(tokens) == TOKENIZER.vocab_size
    for token_id, text in enumerate(tokens):
        if TOKENIZER.is_special(token_id):
            assert text.encode() == TOKENIZER.token_bytes(token_id)
        else:
            assert vocab.text_bytes(text) == TOKENIZER.token_bytes(token_id), token_id
            assert types[token_id] == gguf.TokenType.NORMAL


def test_special_token_types(embedded_gguf) -> None:
    tokens, types, _ = _reader_vocab(embedded_gguf("q8_0"))
    kind = {text: types[i] for i, text in enumerate(tokens)}
    for hidden in ("[BOS]", "[EOS]", "<|im_end|>", "<|im_user|>", "<|im_middle|>", "[PAD]"):
        assert kind[hidden] == gguf.TokenType.CONTROL, hidden
    for shown in ("<think>", "</think>", "<|tool_calls_section_begin|>", "<|tool_call_begin|>"):
        assert kind[shown] == gguf.TokenType.USER_DEFINED, shown
    reserved = next(t for t in tokens if t.startswith("<|reserved_token_"))
    assert kind[reserved] == gguf.TokenType.CONTROL


def test_tokenizer_keys(embedded_gguf) -> None:
    value = {k: f.contents() for k, f in gguf.GGUFReader(embedded_gguf("f16")).fields.items()}
    assert value["tokenizer.ggml.model"] == "gpt2"
    assert value["tokenizer.ggml.pre"] == "kimi-k2"
    assert value["tokenizer.ggml.bos_token_id"] == TOKENIZER.bos_id
    assert value["tokenizer.ggml.eos_token_id"] == TOKENIZER.eos_id
    assert value["tokenizer.ggml.eot_token_id"] == TOKENIZER.im_end_id
    assert value["tokenizer.ggml.padding_token_id"] == TOKENIZER.pad_id
    assert value["tokenizer.ggml.add_bos_token"] is False
    assert "<|im_assistant|>assistant<|im_middle|>" in value["tokenizer.chat_template"]


def _bpe(piece: bytes, merge_rank: dict[tuple[str, str], int], ids: dict[str, int]) -> list[int]:
    """GPT-2 BPE as llama.cpp runs it: merge the lowest-ranked adjacent pair until none is left."""
    parts = list(vocab.token_text(piece))
    while len(parts) > 1:
        ranked = [(merge_rank.get((a, b), len(merge_rank)), i)
                  for i, (a, b) in enumerate(zip(parts, parts[1:], strict=False))]
        rank, i = min(ranked)
        if rank == len(merge_rank):
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ids[p] for p in parts]


@pytest.mark.parametrize("text", SAMPLES)
def test_bpe_over_the_merges_matches_openk2(embedded_gguf, text: str) -> None:
    tokens, _, merges = _reader_vocab(embedded_gguf("q8_0"))
    merge_rank = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    ids = {t: i for i, t in enumerate(tokens)}
    got = [i for piece in reference_split(text) for i in _bpe(piece.encode(), merge_rank, ids)]
    assert got == TOKENIZER.encode(text, allow_special=False)


def _write_vocab(path: Path, tokens: list[bytes]) -> None:
    lines = [f"{base64.b64encode(t).decode()} {r}" for r, t in enumerate(tokens)]
    (path / "tiktoken.model").write_text("\n".join(lines) + "\n")


def test_a_token_no_merge_can_reach_is_an_error(tmp_path: Path) -> None:
    # "abc" ranks below both "ab" and "bc": BPE with lower ranks cannot leave two parts.
    _write_vocab(tmp_path, [bytes([b]) for b in range(256)] + [b"abc", b"ab"])
    with pytest.raises(ValueError, match="abc"):
        vocab.build_vocab(tmp_path, 258 + 256)


def test_vocab_size_mismatch_is_an_error(tmp_path: Path) -> None:
    _write_vocab(tmp_path, [bytes([b]) for b in range(256)] + [b"ab"])
    with pytest.raises(ValueError, match="vocab_size is 1000"):
        vocab.build_vocab(tmp_path, 1000)
