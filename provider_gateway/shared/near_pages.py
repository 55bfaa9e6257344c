"""In-process copies of cached listing pages, so a hot hit reads no Redis key.

A page's key names its generation and credential, so the page stored under it is the same on
every replica; each stored value starts with its expiry (wall clock, ms), so a copy is
dropped when the shared entry expires, not a TTL later. Least recently used copies go first,
within a count and a byte bound.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict

_EXPIRY = struct.Struct(">Q")
EXPIRY_BYTES = _EXPIRY.size
MAX_PAGES = 4096
MAX_BYTES = 32 * 1024 * 1024


def stamped(body: bytes, ttl: float) -> bytes:
    """`body` as stored in the shared backend: its expiry first."""
    return _EXPIRY.pack(int((time.time() + ttl) * 1000)) + body


def unstamped(value: bytes) -> tuple[bytes, float]:
    """The body and how many seconds it has left."""
    (expires_ms,) = _EXPIRY.unpack_from(value)
    return value[EXPIRY_BYTES:], expires_ms / 1000 - time.time()


class NearPages:
    def __init__(self, max_pages: int = MAX_PAGES, max_bytes: int = MAX_BYTES) -> None:
        self._pages: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self.bytes = 0

    def get(self, key: str) -> bytes | None:
        entry = self._pages.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return entry[0]

    def put(self, key: str, body: bytes, remaining: float) -> None:
        if remaining <= 0 or len(body) > self._max_bytes:
            return
        if key in self._pages:
            self._drop(key)
        self._pages[key] = (body, time.monotonic() + remaining)
        self.bytes += len(body)
        while len(self._pages) > self._max_pages or self.bytes > self._max_bytes:
            oldest = next(iter(self._pages))
            self._drop(oldest)

    def __len__(self) -> int:
        return len(self._pages)

    def _drop(self, key: str) -> None:
        body, _ = self._pages.pop(key)
        self.bytes -= len(body)
