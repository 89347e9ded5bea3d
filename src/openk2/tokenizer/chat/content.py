"""Message content -> template text: plain strings, or lists of text / image / video parts.

Images render as one placeholder block followed by a newline (the K2.5 template's layout):
`<|media_begin|>image<|media_content|><|media_pad|><|media_end|>\\n`. The single
`<|media_pad|>` is expanded to the image's patch count later by the vision code. Videos render
as the literal `<|kimi_k25_video_placeholder|>` (plus newline), which the vision processor
replaces by one `video_chunk_prompt(timestamp)` per 4-frame chunk.
"""

from __future__ import annotations

from typing import Any

from openk2.tokenizer.specials import MEDIA_BEGIN, MEDIA_CONTENT, MEDIA_END, MEDIA_PAD

IMAGE_PLACEHOLDER = f"{MEDIA_BEGIN}image{MEDIA_CONTENT}{MEDIA_PAD}{MEDIA_END}"
"""One image in the prompt before expansion (`<|media_pad|>` = config media_placeholder id)."""
VIDEO_PLACEHOLDER = "<|kimi_k25_video_placeholder|>"
"""One video in the prompt; the vision processor replaces it with per-chunk prompts."""

IMAGE_PART_TYPES = frozenset({"image", "image_url"})
VIDEO_PART_TYPES = frozenset({"video", "video_url"})


class MessageFormatError(ValueError):
    """A chat message does not have the shape the template needs; the message says where."""


def video_chunk_prompt(timestamp: str) -> str:
    """Prompt text of one video chunk, e.g. `00:00:01.500<|media_begin|>video...<|media_end|>`."""
    return f"{timestamp}{MEDIA_BEGIN}video{MEDIA_CONTENT}{MEDIA_PAD}{MEDIA_END}"


def render_content(content: Any, where: str) -> str:
    """Text of a message's `content`: a string, a list of parts, or None (renders nothing)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_render_part(part, f"{where}.content[{i}]")
                       for i, part in enumerate(content))
    raise MessageFormatError(f"{where}.content must be a string, a list of parts or null, "
                             f"got {type(content).__name__}")


def _render_part(part: Any, where: str) -> str:
    if not isinstance(part, dict):
        raise MessageFormatError(f"{where} must be an object with a 'type', got {part!r}")
    kind = part.get("type")
    # Like the K2 templates, a part carrying an `image`/`image_url` key is an image whatever
    # its `type` says.
    if kind in IMAGE_PART_TYPES or not IMAGE_PART_TYPES.isdisjoint(part):
        return IMAGE_PLACEHOLDER + "\n"
    if kind in VIDEO_PART_TYPES or not VIDEO_PART_TYPES.isdisjoint(part):
        return VIDEO_PLACEHOLDER + "\n"
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise MessageFormatError(f"{where} is a text part without a string 'text'")
        return text
    raise MessageFormatError(f"{where} has unsupported type {kind!r} "
                             "(expected text, image_url, image, video_url or video)")
