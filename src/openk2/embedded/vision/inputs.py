"""A visual task as model inputs, the way the K2.6 chat template and the processor define them.

The chat renders with the template (an image part becomes one placeholder block, a video part
the video placeholder); the video placeholder is replaced by the clip's per-chunk timestamped
blocks (`video_prompt`), the text is tokenised segment by segment (so the answer alone is
trainable), and each single `<|media_pad|>` is expanded to its item's token count.
"""

from __future__ import annotations

from typing import Any

from openk2.embedded.vision.tasks import VisualTask
from openk2.model.vision.processor import MEDIA_PAD, MediaItem, load_image, preprocess_image
from openk2.model.vision.video import video_chunks, video_prompt
from openk2.tokenizer.chat import VIDEO_PLACEHOLDER, render_chat_segments
from openk2.tokenizer.chat.template import Segment
from openk2.train.data import EncodedChat, encode_chat
from openk2.train.multimodal import MediaChat


def media_of(task: VisualTask) -> tuple[list[MediaItem], str | None]:
    """(encoder items, the text replacing the video placeholder, or None for an image)."""
    if task.kind == "image":
        return [preprocess_image(load_image(task.media))], None
    chunks = video_chunks(task.media)
    return [c.item for c in chunks], video_prompt(chunks)


def task_chat(task: VisualTask, tokenizer: Any, *, with_answer: bool) -> MediaChat:
    """The task's chat (with its answer as the trainable assistant turn, or ending in the
    generation prompt), tokenised and expanded."""
    items, video_text = media_of(task)
    messages = task.messages()
    if with_answer:
        messages.append({"role": "assistant", "content": task.answer})
    segments = render_chat_segments(messages, None, add_generation_prompt=not with_answer)
    if video_text is not None:
        segments = [Segment(text=s.text.replace(VIDEO_PLACEHOLDER, video_text),
                            trainable=s.trainable) for s in segments]
    chat = encode_chat(segments, tokenizer.encode)
    (pad_id,) = tokenizer.encode(MEDIA_PAD)
    return MediaChat(chat=expand_chat(chat, [i.num_tokens for i in items], pad_id),
                     items=tuple(items))


def expand_chat(chat: EncodedChat, counts: list[int], pad_id: int) -> EncodedChat:
    """`expand_media_pads` over ids and flags together (media tokens are never trainable)."""
    found = chat.ids.count(pad_id)
    if found != len(counts):
        raise ValueError(f"the chat has {found} media placeholders for {len(counts)} items")
    ids: list[int] = []
    trainable: list[bool] = []
    remaining = iter(counts)
    for token, flag in zip(chat.ids, chat.trainable, strict=True):
        n = next(remaining) if token == pad_id else 1
        ids.extend([token] * n)
        trainable.extend([flag and token != pad_id] * n)
    return EncodedChat(ids=ids, trainable=trainable)
