"""Streaming detokenization that never splits a multi-byte UTF-8 character.

A BPE token can end in the middle of a character (byte-level BPE splits e.g. a CJK character's
three bytes across tokens). Decoding token by token with `errors="replace"` would emit U+FFFD
halves. We feed token bytes to Python's incremental UTF-8 decoder, which holds an incomplete
trailing sequence until the next bytes arrive, so the concatenated pushes equal a one-shot decode.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable


class IncrementalDecoder:
    """Turns a stream of token ids into text deltas; `flush()` ends the stream."""

    __slots__ = ("_decoder", "_skip", "_token_bytes")

    def __init__(self, token_bytes: Callable[[int], bytes], skip: frozenset[int]) -> None:
        self._token_bytes = token_bytes
        self._skip = skip
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """Add one token; return the text that is now complete (possibly empty)."""
        if token_id in self._skip:
            return ""
        return self._decoder.decode(self._token_bytes(token_id))

    def push_many(self, token_ids: list[int]) -> str:
        """Add several tokens at once; same result as pushing them one by one."""
        data = b"".join(self._token_bytes(t) for t in token_ids if t not in self._skip)
        return self._decoder.decode(data)

    def flush(self) -> str:
        """End the stream: a dangling incomplete character becomes U+FFFD, as in `decode`."""
        return self._decoder.decode(b"", final=True)
