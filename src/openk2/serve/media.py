"""Request media: `image_url` / `video_url` parts -> bytes -> encoder inputs, within limits.

Sources: `data:<mime>;base64,` URLs always; `file://` paths only under a configured root;
`http(s)://` only when the server allows it (off by default: a server should not reach out on a
client's behalf unless its operator says so), with a byte cap and a time limit. Every failure is
a `BadRequestError` naming the part (`messages.<i>.content`) and saying what to change; nothing
is decoded before the request's cheap checks (modality, item count, sizes) pass.
"""

from __future__ import annotations

import base64
import binascii
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from openk2.engine.media import content_key
from openk2.model.vision.processor import (
    MediaError,
    MediaItem,
    ProcessorConfig,
    load_image,
    preprocess_image,
)
from openk2.serve.errors import BadRequestError

if TYPE_CHECKING:
    from openk2.model.vision.video import VideoChunk

MediaKind = Literal["image", "video"]
IMAGE_TYPES = frozenset({"png", "jpeg", "jpg", "webp", "gif", "bmp"})
VIDEO_TYPES = frozenset({
    "mp4", "mpeg", "quicktime", "x-msvideo", "avi", "x-flv", "webm", "x-ms-wmv", "3gpp",
    "x-matroska",
})  # fmt: skip
"""MIME subtypes accepted in data URLs (the Kimi API's png/jpeg/webp/gif, mp4/mpeg/mov/...)."""
MiB = 1 << 20


@dataclass(kw_only=True, slots=True)
class MediaConfig:
    """What one request may send: sources, sizes and counts."""

    max_items: int = 8
    """Images plus videos in one request."""
    max_image_bytes: int = 20 * MiB
    """Encoded size of one image."""
    max_video_bytes: int = 64 * MiB
    """Encoded size of one video."""
    max_image_pixels: int = 40_000_000
    """Width x height of one decoded image (it is resized to <= 16,384 patches anyway)."""
    max_video_frames: int = 64
    """Frames sampled from one video (2 fps: 32 s; 4 frames make one chunk)."""
    allow_http: bool = False
    """Fetch http(s) URLs (the server reaches out to the given host)."""
    http_timeout_s: float = 10.0
    """Whole-download time limit of one http(s) fetch."""
    file_root: Path | None = None
    """Serve `file://` URLs under this directory; None refuses them."""
    processor: ProcessorConfig = field(default_factory=ProcessorConfig)


@dataclass(slots=True)
class MediaPartRef:
    """One media part of a request, before anything is read."""

    kind: MediaKind
    url: str
    where: str
    """The `param` of errors about it, e.g. `messages.0.content`."""
    index: int
    """The part's index in its message's content list (for messages)."""


@dataclass(slots=True)
class LoadedMedia:
    """A decoded part: one image item, or a video's chunks (one item each)."""

    kind: MediaKind
    items: list[MediaItem]
    video: list[VideoChunk] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    """The items' content hashes (prefix- and encoder-cache keys), computed here, off the
    engine thread."""

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = [content_key(item) for item in self.items]


def media_parts(messages: list[dict[str, Any]]) -> list[MediaPartRef]:
    """The image and video parts of rendered-message dicts, in prompt order (no I/O)."""
    refs = []
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else []):
            ref = _part_ref(part, f"messages.{i}.content", j)
            if ref is not None:
                refs.append(ref)
    return refs


def _part_ref(part: dict[str, Any], where: str, index: int) -> MediaPartRef | None:
    kind = part.get("type")
    if kind == "input_audio":
        raise BadRequestError(
            f"Part {index} is input_audio: the K2.6 family has no audio encoder (text, image "
            "and video only); transcribe the audio and send text.",
            param=where, code="unsupported_modality",
        )  # fmt: skip
    if kind == "file":
        raise BadRequestError(
            f"Part {index} is a file part, which this server does not read; send images as "
            "image_url and videos as video_url.", param=where, code="unsupported_content",
        )  # fmt: skip
    if kind not in ("image_url", "video_url"):
        return None
    url = _part_url(part.get(kind))
    if url is None:
        raise BadRequestError(
            f"Part {index} ({kind}) needs {{\"{kind}\": {{\"url\": \"data:...\"}}}}.",
            param=where, code="invalid_media",
        )  # fmt: skip
    return MediaPartRef(kind="image" if kind == "image_url" else "video", url=url,
                        where=where, index=index)  # fmt: skip


def _part_url(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("url"), str):
        return value["url"]
    return None


def check_count(refs: list[MediaPartRef], config: MediaConfig) -> None:
    if len(refs) > config.max_items:
        raise BadRequestError(
            f"The request has {len(refs)} images/videos; this server takes at most "
            f"{config.max_items} per request.", param="messages", code="too_many_media",
        )  # fmt: skip


def load_part(ref: MediaPartRef, config: MediaConfig) -> LoadedMedia:
    """Read and decode one part (blocking: run it off the event loop)."""
    from openk2.model.vision.video import video_chunks  # PyAV loads on the first video

    data = media_bytes(ref, config)
    try:
        if ref.kind == "image":
            return LoadedMedia(kind="image", items=[_image_item(data, ref, config)])
        chunks = video_chunks(data, config.processor, max_frames=config.max_video_frames)
    except MediaError as exc:
        raise _bad(ref, f"cannot use this {ref.kind}: {exc}", "invalid_media") from None
    return LoadedMedia(kind="video", items=[c.item for c in chunks], video=chunks)


def _image_item(data: bytes, ref: MediaPartRef, config: MediaConfig) -> MediaItem:
    image = load_image(data)
    if image.width * image.height > config.max_image_pixels:
        raise _bad(
            ref, f"the image is {image.width}x{image.height} pixels, more than this server's "
            f"{config.max_image_pixels:,}; scale it down", "media_too_large",
        )  # fmt: skip
    return preprocess_image(image, config.processor)


def media_bytes(ref: MediaPartRef, config: MediaConfig) -> bytes:
    """The encoded bytes of a part from its data, file or http(s) URL (within the byte cap)."""
    limit = config.max_image_bytes if ref.kind == "image" else config.max_video_bytes
    scheme = ref.url.partition(":")[0].lower()
    if scheme == "data":
        return _data_url(ref, limit)
    if scheme == "file":
        return _file_url(ref, limit, config.file_root)
    if scheme in ("http", "https"):
        if not config.allow_http:
            raise _bad(ref, "this server does not fetch http(s) URLs (start it with "
                       "--allow-media-urls); send the media inline as a data: URL",
                       "media_url_disabled")  # fmt: skip
        return _http_url(ref, limit, config.http_timeout_s)
    raise _bad(ref, f"unsupported URL scheme {scheme!r}: use data:, or http(s): where the "
               "server allows it", "invalid_media")  # fmt: skip


def _data_url(ref: MediaPartRef, limit: int) -> bytes:
    header, sep, payload = ref.url.partition(",")
    mime = header[5:].partition(";")[0].lower()
    major, _, minor = mime.partition("/")
    if not sep or not header.lower().endswith(";base64"):
        raise _bad(ref, f"a {ref.kind} data URL must look like data:{ref.kind}/<type>;base64,"
                   "<data>", "invalid_media")  # fmt: skip
    _check_type(ref, major, minor)
    if len(payload) * 3 // 4 > limit + 3:
        raise _too_large(ref, len(payload) * 3 // 4, limit)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(ref, f"the data URL is not valid base64 ({exc})", "invalid_media") from None


def _check_type(ref: MediaPartRef, major: str, minor: str) -> None:
    allowed = IMAGE_TYPES if ref.kind == "image" else VIDEO_TYPES
    if major != ref.kind or minor not in allowed:
        raise _bad(
            ref, f"unsupported {ref.kind} format {major}/{minor or '?'}; send one of "
            f"{', '.join(f'{ref.kind}/{t}' for t in sorted(allowed))}", "unsupported_media_type",
        )  # fmt: skip


def _file_url(ref: MediaPartRef, limit: int, root: Path | None) -> bytes:
    if root is None:
        raise _bad(ref, "this server reads no local files (start it with --media-root DIR)",
                   "media_url_disabled")  # fmt: skip
    path = Path(urllib.request.url2pathname(ref.url.removeprefix("file://"))).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise _bad(ref, f"no such file under the media root: {path}", "invalid_media")
    if path.stat().st_size > limit:
        raise _too_large(ref, path.stat().st_size, limit)
    return path.read_bytes()


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib's default also follows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201, PLR0913
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.URLError(f"redirect to a non-http(s) URL refused: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_HTTP = urllib.request.OpenerDirector()
for _handler in (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                 _HttpOnlyRedirects(), urllib.request.HTTPErrorProcessor(),
                 urllib.request.HTTPDefaultErrorHandler()):  # fmt: skip
    _HTTP.add_handler(_handler)


def _http_url(ref: MediaPartRef, limit: int, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    try:
        with _HTTP.open(ref.url, timeout=timeout_s) as response:
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > limit:
                raise _too_large(ref, declared, limit)
            data = bytearray()
            while chunk := response.read(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise _too_large(ref, len(data), limit)
                if time.monotonic() > deadline:
                    raise _bad(ref, f"the download took over {timeout_s:g}s", "media_timeout")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _bad(ref, f"cannot fetch {ref.url}: {exc}", "media_fetch_failed") from None
    return bytes(data)


def _too_large(ref: MediaPartRef, size: int, limit: int) -> BadRequestError:
    return _bad(ref, f"the {ref.kind} is {size / MiB:.1f} MiB, more than this server's "
                f"{limit / MiB:.0f} MiB", "media_too_large")  # fmt: skip


def _bad(ref: MediaPartRef, reason: str, code: str) -> BadRequestError:
    return BadRequestError(f"Part {ref.index} ({ref.kind}): {reason}.", param=ref.where, code=code)
