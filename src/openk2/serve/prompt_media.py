"""A multimodal prompt: the chat template's media placeholders expanded to exact token runs.

K2.5 / K2.6 layout (`spec/k26-model.md` §5): an image part renders as
`<|media_begin|>image<|media_content|><|media_pad|><|media_end|>` + newline, a video part as
`<|kimi_k25_video_placeholder|>` + newline, which becomes one
`HH:MM:SS.fff<|media_begin|>video<|media_content|><|media_pad|><|media_end|>` per 4-frame chunk.
After encoding, the k-th single `<|media_pad|>` is repeated as many times as the k-th item has
LM tokens, so `usage.prompt_tokens` counts every vision token.
"""

from __future__ import annotations

from typing import Any

from openk2.model.vision.processor import MediaError, expand_media_pads
from openk2.serve.errors import BadRequestError
from openk2.serve.media import LoadedMedia
from openk2.serve.state import ServerState
from openk2.tokenizer.chat import VIDEO_PLACEHOLDER, render_chat


def encode_multimodal(
    state: ServerState,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    media: list[LoadedMedia],
    flags: dict[str, bool],
) -> list[int]:
    """Prompt ids with every media item's pads expanded (400 when text and media disagree)."""
    text = expand_videos(render_chat(messages, tools, **flags), media)
    ids = state.tokenizer.encode(text)
    counts = [item.num_tokens for part in media for item in part.items]
    try:
        return expand_media_pads(ids, counts, state.media_pad_id)
    except MediaError as exc:
        raise BadRequestError(
            f"{exc}: message text must not contain <|media_pad|>; send media as image_url / "
            "video_url parts", param="messages", code="invalid_media",
        ) from None  # fmt: skip


def expand_videos(text: str, media: list[LoadedMedia]) -> str:
    """`text` with the k-th video placeholder replaced by the k-th video's chunk blocks."""
    videos = [part for part in media if part.kind == "video"]
    pieces = text.split(VIDEO_PLACEHOLDER)
    if len(pieces) - 1 != len(videos):
        raise BadRequestError(
            f"the conversation holds {len(pieces) - 1} video placeholders for {len(videos)} "
            f"videos: message text must not contain {VIDEO_PLACEHOLDER}",
            param="messages", code="invalid_media",
        )  # fmt: skip
    out = [pieces[0]]
    for video, piece in zip(videos, pieces[1:], strict=True):
        out += ["".join(chunk.prompt() for chunk in video.video), piece]
    return "".join(out)
