"""A visual task as model inputs: the K2.6 template, expanded media pads, answer-only labels."""

from __future__ import annotations

import pytest

from openk2.embedded import model_dir
from openk2.embedded.vision.inputs import expand_chat, task_chat
from openk2.embedded.vision.tasks import make_task
from openk2.tokenizer import load_tokenizer
from openk2.train.data import EncodedChat

TOKENIZER = load_tokenizer(model_dir())
PAD = TOKENIZER.encode("<|media_pad|>")[0]


def test_an_image_chat_has_one_pad_run_and_only_the_answer_trains() -> None:
    task = make_task("colour", seed=0, split="t", index=0)
    chat = task_chat(task, TOKENIZER, with_answer=True)
    (item,) = chat.items
    assert chat.chat.ids.count(PAD) == item.num_tokens
    trained = [i for i, f in zip(chat.chat.ids, chat.chat.trainable, strict=True) if f]
    assert TOKENIZER.decode(trained) == f"<think></think>{task.answer}<|im_end|>"
    text = TOKENIZER.decode([i for i in chat.chat.ids if i != PAD])
    assert text.startswith("<|im_user|>user<|im_middle|><|media_begin|>image<|media_content|>")
    assert f"<|media_end|>\n{task.question}<|im_end|>" in text


def test_a_clip_becomes_timestamped_chunk_blocks_and_the_prompt_ends_in_generation() -> None:
    task = make_task("appear", seed=0, split="t", index=0)
    chat = task_chat(task, TOKENIZER, with_answer=False)
    assert len(chat.items) == 2 and not any(chat.chat.trainable)
    assert chat.chat.ids.count(PAD) == sum(i.num_tokens for i in chat.items)
    text = TOKENIZER.decode([i for i in chat.chat.ids if i != PAD])
    assert "00:00:00.000<|media_begin|>video<|media_content|><|media_end|>" \
           "00:00:02.000<|media_begin|>video" in text
    assert "<|kimi_k25_video_placeholder|>" not in text
    assert text.endswith("<|im_assistant|>assistant<|im_middle|><think>")


def test_expand_chat_refuses_a_placeholder_count_mismatch() -> None:
    chat = EncodedChat(ids=[1, PAD, 2], trainable=[False, False, True])
    assert expand_chat(chat, [3], PAD).ids == [1, PAD, PAD, PAD, 2]
    with pytest.raises(ValueError, match="1 media placeholders for 2 items"):
        expand_chat(chat, [3, 4], PAD)
