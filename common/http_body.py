"""Reading an aiohttp client response's body up to a cap.

`resp.content.read(n)` answers with what is buffered so far (at most n bytes), not n bytes: a body that arrives
in several chunks would be cut at the first, and a cap checked on its length would never trip. This reads chunk
by chunk until the end of the body, or until one byte past the cap, which is refused.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import StreamReader

from common.errors import ConveneError

CHUNK_BYTES = 16 * 1024


class BodyTooLarge(ConveneError):
    """A peer's answer over the size we read (502: the fault is the peer's, not the caller's)."""

    code, status = "body_too_large", 502


class HasContent(Protocol):
    @property
    def content(self) -> StreamReader: ...


async def read_capped(resp: HasContent, limit: int) -> bytes:
    """The whole body, or BodyTooLarge once more than `limit` bytes arrived (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the answer is over {limit} bytes", limit=limit)
        parts.append(chunk)
    return b"".join(parts)
