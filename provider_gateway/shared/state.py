"""The shared backend with graceful degradation, plus locks and one-time keys built on it."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from provider_gateway.errors import ServiceUnavailable
from provider_gateway.shared.announcements import Listener
from provider_gateway.shared.backends import Backend, BackendUnavailable, MemoryBackend
from provider_gateway.shared.gcra import Admission, Budget

log = logging.getLogger(__name__)


class SharedState:
    """Operations go to the shared backend; while it fails they go to an in-process one.

    Replicas then stop sharing (each caches and coordinates alone) but no request fails, and
    the shared backend is tried again on the next call: recovery needs nothing.
    """

    def __init__(self, backend: Backend | None, *, retry_after: float = 1.0) -> None:
        self._shared = backend
        self._local = MemoryBackend()
        self._retry_after = retry_after
        self._skip_until = 0.0
        self.degraded_since: float | None = None
        self.failures = 0  # shared-backend failures so far: a read that saw none was shared

    @property
    def configured(self) -> bool:
        """Whether a shared backend is configured (whatever its health)."""
        return self._shared is not None

    @property
    def announces(self) -> bool:
        """Whether writes through set_announced reach every replica's `listen`."""
        return self._shared is not None and self._shared.announces

    @property
    def sharing(self) -> bool:
        """Whether the next operation goes to the shared backend (configured, not skipped)."""
        return self._shared is not None and time.monotonic() >= self._skip_until

    async def _call(self, operation: str, *args: object) -> object:
        shared, local = self._shared, self._local
        # After a failure, go in-process for `retry_after` seconds (a circuit breaker): a dead
        # or hung Redis then costs one timeout a second, not one per operation.
        if shared is not None and time.monotonic() >= self._skip_until:
            try:
                result = await getattr(shared, operation)(*args)
            except BackendUnavailable as error:
                self._failed(error)
            else:
                self._recovered()
                return result
        return await getattr(local, operation)(*args)

    def _failed(self, error: BackendUnavailable) -> None:
        self.failures += 1
        self._skip_until = time.monotonic() + self._retry_after
        if self.degraded_since is None:
            self.degraded_since = time.monotonic()
            log.warning("shared state unavailable (%s): running in-process", error)

    def _recovered(self) -> None:
        if self.degraded_since is not None:
            self.degraded_since = None
            self._skip_until = 0.0
            log.warning("shared state available again")

    async def get(self, key: str) -> bytes | None:
        value = await self._call("get", key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._call("set", key, value, ttl)

    async def set_announced(self, key: str, value: bytes, ttl: float) -> None:
        """Set, and tell every replica listening that `key` changed (one round trip)."""
        await self._call("set_announced", key, value, ttl)

    async def listen(self, listener: Listener) -> None:
        """Hear the announced changes until the subscription fails (BackendUnavailable).

        Not a reason to go in-process: a subscription can drop while Redis answers."""
        if self._shared is None:
            raise BackendUnavailable("no shared backend")
        await self._shared.listen(listener)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self._call("add", key, value, ttl))

    async def delete_if(self, key: str, value: bytes) -> None:
        await self._call("delete_if", key, value)

    async def incr(self, key: str) -> int:
        result = await self._call("incr", key)
        assert isinstance(result, int)
        return result

    async def hit(self, key: str, window: float) -> int:
        result = await self._call("hit", key, window)
        assert isinstance(result, int)
        return result

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", key))

    async def gcra(self, key: str, budget: Budget, max_delay: float = 0.0) -> Admission:
        """Take one request from the key's budget (every replica's, one Redis round trip)."""
        result = await self._call("gcra", key, budget, max_delay)
        assert isinstance(result, Admission)
        return result

    async def gcra_defer(self, key: str, budget: Budget, hold: float) -> None:
        """Admit nothing from the key's budget for `hold` seconds, on every replica."""
        await self._call("gcra_defer", key, budget, hold)

    async def check(self) -> str:
        """ "ok", "degraded" (shared backend down: in-process) or "in-process" (none configured)."""
        if self._shared is None:
            return "in-process"
        try:
            await self._shared.ping()
        except BackendUnavailable as error:
            self._failed(error)
            return "degraded"
        self._recovered()
        return "ok"

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()


class SharedOneTimeKeys:
    """OAuth states used once across every replica (atomic set-if-absent with expiry)."""

    def __init__(self, state: SharedState) -> None:
        self._state = state

    async def claim(self, key: str, ttl_seconds: int, *, owner: str | None = None) -> bool:
        value = b"1" if owner is None else b"owner:" + owner.encode()
        if await self._state.add(f"once:{key}", value, ttl_seconds):
            return True
        # The first claim's value never changes, so reading it after a refused add is safe.
        return owner is not None and await self._state.get(f"once:{key}") == value


class SharedLocks:
    """Per-key mutual exclusion across replicas: an asyncio lock in-process, then a
    short-lived shared lock (SET NX PX, released only by its owner). A holder that dies
    leaves the lock to expire after `ttl`."""

    def __init__(self, state: SharedState, ttl: float = 15.0, wait: float = 20.0) -> None:
        self._state = state
        self._ttl = ttl
        self._wait = wait
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._local_lock(key):
            token = secrets.token_bytes(16)
            deadline = time.monotonic() + self._wait
            delay = 0.01
            while not await self._state.add(f"lock:{key}", token, self._ttl):
                if time.monotonic() > deadline:
                    raise ServiceUnavailable("another replica is still busy with this; retry")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
            try:
                yield
            finally:
                await self._state.delete_if(f"lock:{key}", token)

    @asynccontextmanager
    async def _local_lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._local[key]
            if users <= 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)
