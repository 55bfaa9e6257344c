"""What the providers need from shared state: one-time OAuth states and per-key locks.

Implemented by provider_gateway.shared (Redis across replicas, or in-process)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class OneTimeKeys(Protocol):
    async def claim(self, key: str, ttl_seconds: int, *, owner: str | None = None) -> bool:
        """True the first time `key` is claimed within `ttl_seconds`, False afterwards; with
        an `owner`, also True when the same owner claims it again."""
        ...


class KeyedLocks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Exclusive for `key` while held."""
        ...
