"""Cached provider listings (Slack channels, Teams teams/channels) with single-flight.

Keys carry a per-tenant generation: storing, rotating or revoking a credential replaces it
with a fresh random value, so older entries are simply never read again (no key scans) and
expire by TTL. Generations expire too (bounded growth); a missing one is initialised to a
fresh random value with set-if-absent, never to a value used before, so an expired or
evicted generation cannot make an older entry readable again.
Identical concurrent misses make one upstream call: in-process they share one task; across
replicas one fills the entry under a short lock while the others wait for it, bounded, and
fall back to a direct call if the filler dies.
With Redis, a hot hit reads neither key: generations are kept in-process while a pub/sub
subscription vouches for them (generations.py), and pages are copied in-process until their
stored expiry (near_pages.py).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from provider_gateway.models import Recipient
from provider_gateway.shared.generations import LocalGenerations
from provider_gateway.shared.near_pages import NearPages, stamped, unstamped
from provider_gateway.shared.state import SharedState

Loader = Callable[[], Awaitable[dict[str, Any]]]
T = TypeVar("T")
_FILL_LOCK_SECONDS = 10.0
_MAX_WAIT_SECONDS = 5.0
_KEYS_REMEMBERED = 4096  # computed keys kept, by what names them
_PAGE_FORMAT = "2"  # stored pages start with their expiry (near_pages.py)
# A day, and always longer than the entries cached under a generation live.
GENERATION_TTL_SECONDS = 24 * 3600


@dataclass
class ListingStats:
    hits: int = 0
    misses: int = 0
    joins: int = 0  # requests answered by another request's upstream call


class ListingCache:
    def __init__(
        self,
        state: SharedState,
        ttl_seconds: int,
        *,
        max_wait: float = _MAX_WAIT_SECONDS,
        generation_ttl: float | None = None,
    ) -> None:
        self._state = state
        self._ttl = ttl_seconds
        self._generation_ttl = generation_ttl or max(GENERATION_TTL_SECONDS, 2 * ttl_seconds)
        self._max_wait = max_wait
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self.stats = ListingStats()
        # Run `generations.run()` as a task to serve known generations without Redis.
        self.generations = LocalGenerations(state)
        # With Redis, hot pages are copied in-process; without, the store is in-process.
        self._near = NearPages() if state.configured else None

    async def invalidate(self, environment_id: str, channel_id: str, tenant: Recipient) -> None:
        key = _generation_key(environment_id, channel_id, tenant)
        await self._state.set_announced(key, _fresh_generation(), self._generation_ttl)
        self.generations.forget(key)

    async def generation(self, environment_id: str, channel_id: str, tenant: Recipient) -> str:
        """Changes whenever the tenant's channel data is written, on any replica."""
        key = _generation_key(environment_id, channel_id, tenant)
        known = self.generations.lookup(key)
        if known is not None:
            return known
        ticket = self.generations.ticket()
        value = await self._state.get(key)
        if value is None:
            fresh = _fresh_generation()
            if await self._state.add(key, fresh, self._generation_ttl):
                value = fresh
            else:  # another request initialised it first: use theirs
                value = await self._state.get(key) or fresh
        generation = value.decode()
        self.generations.keep(key, generation, ticket)
        return generation

    async def get_or_load(
        self,
        environment_id: str,
        channel_id: str,
        tenant: Recipient,
        *,
        generation: str,
        kind: str,
        credential: str,
        query: Mapping[str, Any],
        load: Loader,
    ) -> bytes:
        """The listing as JSON bytes: cached pages are served exactly as stored."""
        if self._ttl <= 0:
            return _encode(await load())
        key = page_key(environment_id, channel_id, tenant, generation, kind, credential, query)
        near = self._near.get(key) if self._near is not None else None
        if near is not None:
            self.stats.hits += 1
            return near
        cached = await self._state.get(key)
        if cached is not None:
            self.stats.hits += 1
            return self._body(key, cached)
        running = self._inflight.get(key)
        if running is not None:
            self.stats.joins += 1
            return await asyncio.shield(running)
        self.stats.misses += 1
        task = asyncio.ensure_future(self._fill(key, load))
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _fill(self, key: str, load: Loader) -> bytes:
        token = secrets.token_bytes(16)
        if await self._state.add(key + ":filling", token, _FILL_LOCK_SECONDS):
            try:
                cached = await self._state.get(key)  # filled just before we took the lock?
                if cached is not None:
                    self.stats.joins += 1
                    return self._body(key, cached)
                value = stamped(_encode(await load()), self._ttl)
                await self._state.set(key, value, self._ttl)
                return self._body(key, value)
            finally:
                await self._state.delete_if(key + ":filling", token)
        # Another replica is calling upstream for this page: wait for its answer.
        deadline, delay = time.monotonic() + self._max_wait, 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
            filling = await self._state.exists(key + ":filling")
            # Read the entry after the lock: a filler stores, then unlocks, so a lock seen
            # gone here means the entry is there, or the filler failed.
            cached = await self._state.get(key)
            if cached is not None:
                self.stats.joins += 1
                return self._body(key, cached)
            if not filling:
                break  # the filler failed: stop waiting
        return _encode(await load())

    def _body(self, key: str, value: bytes) -> bytes:
        """A stored page's body, kept in-process until the stored entry expires."""
        body, remaining = unstamped(value)
        if self._near is not None:
            self._near.put(key, body, remaining)
        return body


def page_key(
    environment_id: str,
    channel_id: str,
    tenant: Recipient,
    generation: str,
    kind: str,
    credential: str,
    query: Mapping[str, Any],
) -> str:
    """A page's key from what names it; the last ones computed are remembered (hashing the
    credential and serialising the query were a third of a cached hit)."""
    names = (environment_id, channel_id, tenant, generation, kind, credential)
    try:
        return _remembered_page_key(*names, tuple(query.items()))
    except TypeError:  # a query value that cannot be hashed: compute it each time
        return _page_key(*names, query)


def _page_key(
    environment_id: str,
    channel_id: str,
    tenant: Recipient,
    generation: str,
    kind: str,
    credential: str,
    query: Mapping[str, Any],
) -> str:
    return "listing:" + _digest(
        _PAGE_FORMAT,
        environment_id,
        channel_id,
        tenant.describe(),
        generation,
        kind,
        hashlib.sha256(credential.encode()).hexdigest(),
        json.dumps(query, sort_keys=True),
    )


@functools.lru_cache(maxsize=_KEYS_REMEMBERED)
def _remembered_page_key(
    environment_id: str,
    channel_id: str,
    tenant: Recipient,
    generation: str,
    kind: str,
    credential: str,
    query: tuple[tuple[str, Any], ...],
) -> str:
    return _page_key(environment_id, channel_id, tenant, generation, kind, credential, dict(query))


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class GenerationMemo(Generic[T]):
    """In-process values valid for one generation of a tenant's channel data: a write on any
    replica bumps the shared generation, so a memo can never outlive the data it copies."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._values: dict[tuple[str, ...], tuple[str, T]] = {}
        self._capacity = capacity

    def get(self, key: tuple[str, ...], generation: str) -> T | None:
        entry = self._values.get(key)
        return entry[1] if entry is not None and entry[0] == generation else None

    def put(self, key: tuple[str, ...], generation: str, value: T) -> None:
        if len(self._values) >= self._capacity:
            self._values.clear()
        self._values[key] = (generation, value)


def _fresh_generation() -> bytes:
    return secrets.token_hex(12).encode()


@functools.lru_cache(maxsize=_KEYS_REMEMBERED)  # hashing is a hit's cost
def _generation_key(environment_id: str, channel_id: str, tenant: Recipient) -> str:
    return "generation:" + _digest(environment_id, channel_id, tenant.describe())


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
