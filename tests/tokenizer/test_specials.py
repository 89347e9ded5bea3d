"""Reserved special tokens: K2 offsets, reserved names, config collisions."""

import pytest

from openk2.tokenizer import specials as sp

REAL_BASE = 163_584


def test_named_specials_sit_at_the_real_k2_ids() -> None:
    table = sp.build_special_table(REAL_BASE, sp.default_added_tokens(REAL_BASE))
    expected = {
        "[BOS]": 163584, "[EOS]": 163585, "<|im_end|>": 163586, "<|im_user|>": 163587,
        "<|im_assistant|>": 163588, "<|start_header_id|>": 163590, "<|end_header_id|>": 163591,
        "[EOT]": 163593, "<|im_system|>": 163594, "<|tool_calls_section_begin|>": 163595,
        "<|tool_calls_section_end|>": 163596, "<|tool_call_begin|>": 163597,
        "<|tool_call_argument_begin|>": 163598, "<|tool_call_end|>": 163599,
        "<|im_middle|>": 163601, "<|media_begin|>": 163602, "<|media_content|>": 163603,
        "<|media_end|>": 163604, "<|media_pad|>": 163605, "<think>": 163606,
        "</think>": 163607, "[UNK]": 163838, "[PAD]": 163839,
    }
    for name, token_id in expected.items():
        assert table.ids[name] == token_id


def test_unnamed_reserved_ids_use_the_real_spelling() -> None:
    table = sp.build_special_table(REAL_BASE, sp.default_added_tokens(REAL_BASE))
    assert table.ids["<|reserved_token_163589|>"] == 163589
    assert table.ids["<|reserved_token_163600|>"] == 163600
    assert len(table.ids) == 256
    assert set(table.ids.values()) == set(range(REAL_BASE, REAL_BASE + 256))


def test_tool_call_and_think_tokens_are_not_skippable() -> None:
    table = sp.build_special_table(100, sp.default_added_tokens(100))
    assert table.ids["<|tool_call_begin|>"] not in table.skippable
    assert table.ids["<think>"] not in table.skippable
    assert table.ids["<|im_end|>"] in table.skippable
    assert table.ids["<|reserved_token_105|>"] in table.skippable


def test_added_token_inside_the_ranks_is_rejected() -> None:
    with pytest.raises(ValueError, match="collides with the BPE ranks"):
        sp.build_special_table(100, {50: ("[BOS]", True)})


def test_duplicate_special_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        sp.build_special_table(100, {100: ("[BOS]", True), 101: ("[BOS]", True)})


def test_added_ids_past_the_reserved_block_become_extra_specials() -> None:
    table = sp.build_special_table(100, {356: ("<|video|>", True)})
    assert table.ids["<|video|>"] == 356
    assert len(table.ids) == 257
