"""One-time OAuth states and per-key locks, in-process (a Redis backend shares them across
replicas)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class OneTimeKeys(Protocol):
    async def claim(self, key: str, ttl_seconds: int) -> bool:
        """True the first time `key` is claimed within `ttl_seconds`, False afterwards."""
        ...


class KeyedLocks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Exclusive for `key` while held."""
        ...


class InProcessOneTimeKeys:
    def __init__(self) -> None:
        self._claimed: dict[str, float] = {}

    async def claim(self, key: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        if len(self._claimed) > 10_000:
            self._claimed = {k: until for k, until in self._claimed.items() if until > now}
        until = self._claimed.get(key)
        if until is not None and until > now:
            return False
        self._claimed[key] = now + ttl_seconds
        return True


class InProcessKeyedLocks:
    """An asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
