"""The exact Kimi K2.6 chat protocol: prompt rendering, tool declarations, media placeholders."""

from openk2.tokenizer.chat.content import (
    IMAGE_PLACEHOLDER,
    VIDEO_PLACEHOLDER,
    MessageFormatError,
    video_chunk_prompt,
)
from openk2.tokenizer.chat.declare import deep_sort, tool_declaration, tools_ts_str
from openk2.tokenizer.chat.template import (
    Segment,
    encode_chat,
    encode_chat_with_mask,
    render_chat,
    render_chat_segments,
)
from openk2.tokenizer.chat.tools_ts import ToolSchemaError, tools_to_typescript

__all__ = [
    "IMAGE_PLACEHOLDER",
    "VIDEO_PLACEHOLDER",
    "MessageFormatError",
    "Segment",
    "ToolSchemaError",
    "deep_sort",
    "encode_chat",
    "encode_chat_with_mask",
    "render_chat",
    "render_chat_segments",
    "tool_declaration",
    "tools_to_typescript",
    "tools_ts_str",
    "video_chunk_prompt",
]
