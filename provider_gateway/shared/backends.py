"""Two backends with the same small async interface: in-process, and Redis (redis.asyncio)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from provider_gateway.config import RedisTopology
from provider_gateway.shared.announcements import SET_AND_PUBLISH, Listener, channel_name, listen
from provider_gateway.shared.gcra import (
    GCRA_DEFER_SCRIPT,
    GCRA_SCRIPT,
    Admission,
    Budget,
    LocalGcra,
    admission_from_reply,
    gcra_micros,
)
from provider_gateway.shared.redis_client import REDIS_TIMEOUT_SECONDS as REDIS_TIMEOUT_SECONDS
from provider_gateway.shared.redis_client import connect_redis

if TYPE_CHECKING:
    from provider_gateway.config import Settings

log = logging.getLogger(__name__)

# Every script touches exactly one key (KEYS[1]), so each runs on Redis Cluster too.
_HIT = """
local count = redis.call('incr', KEYS[1])
if count == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return count
"""
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class BackendUnavailable(Exception):
    """The shared backend did not answer (in time)."""


class Backend(Protocol):
    # Whether set_announced tells other replicas, through `listen` (shared/announcements.py).
    announces: bool

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def set_announced(self, key: str, value: bytes, ttl: float) -> None: ...
    async def listen(self, listener: Listener) -> None: ...  # until it fails: Unavailable
    async def add(self, key: str, value: bytes, ttl: float) -> bool: ...  # set if absent
    async def delete_if(self, key: str, value: bytes) -> None: ...  # only if it holds value

    async def incr(self, key: str) -> int: ...
    async def hit(self, key: str, window: float) -> int: ...  # count in a window from 1st hit
    async def exists(self, key: str) -> bool: ...
    # Take one request from the key's GCRA budget (shared/gcra.py), waiting up to max_delay.
    async def gcra(self, key: str, budget: Budget, max_delay: float) -> Admission: ...
    # Admit nothing from the key's budget for `hold` seconds (an upstream's Retry-After).
    async def gcra_defer(self, key: str, budget: Budget, hold: float) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


# The in-process store drops expired entries when it has grown to this many, and then again
# each time it doubles: amortised O(1) per write however many entries are live.
_SWEEP_AT = 50_000


class MemoryBackend:
    announces = False

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float]] = {}
        self._sweep_at = _SWEEP_AT
        self._gcra = LocalGcra()

    def _live(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[1] and entry[1] < time.monotonic():
            del self._values[key]
            return None
        return entry[0]

    def _sweep(self) -> None:
        if len(self._values) > self._sweep_at:
            now = time.monotonic()
            self._values = {k: v for k, v in self._values.items() if not v[1] or v[1] >= now}
            self._sweep_at = max(_SWEEP_AT, 2 * len(self._values))

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._sweep()
        self._values[key] = (value, time.monotonic() + ttl)

    async def set_announced(self, key: str, value: bytes, ttl: float) -> None:
        await self.set(key, value, ttl)  # one process: nobody else to tell

    async def listen(self, listener: Listener) -> None:
        raise BackendUnavailable("the in-process store announces nothing")

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete_if(self, key: str, value: bytes) -> None:
        if self._live(key) == value:
            del self._values[key]

    async def incr(self, key: str) -> int:
        number = int(self._live(key) or b"0") + 1
        self._values[key] = (str(number).encode(), 0.0)
        return number

    async def hit(self, key: str, window: float) -> int:
        current = self._live(key)
        if current is None:
            self._sweep()
            self._values[key] = (b"1", time.monotonic() + window)
            return 1
        number = int(current) + 1
        self._values[key] = (str(number).encode(), self._values[key][1])
        return number

    async def exists(self, key: str) -> bool:
        return self._live(key) is not None

    async def gcra(self, key: str, budget: Budget, max_delay: float) -> Admission:
        return self._gcra.take(key, budget, max_delay)

    async def gcra_defer(self, key: str, budget: Budget, hold: float) -> None:
        self._gcra.defer(key, budget, hold)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBackend:
    """Every failure (refused, reset, slower than REDIS_TIMEOUT_SECONDS) is BackendUnavailable.

    One node, Sentinel or Cluster (shared/redis_client.py): every operation touches one key.
    """

    def __init__(
        self,
        url: str | None,
        prefix: str,
        *,
        topology: RedisTopology | None = None,
        ca_bundle: Path | None = None,
    ) -> None:
        topology = topology or RedisTopology()
        self._connection = connect_redis(url, topology, ca_bundle)
        self._client = self._connection.client
        self._prefix = prefix
        # redis-py's cluster pub/sub binds a subscription to one node, which would have to
        # follow node failures and resharding: a cluster keeps reading keys instead.
        self.announces = topology.mode != "cluster"
        self._set_and_publish = self._client.register_script(SET_AND_PUBLISH)
        self._compare_and_delete = self._client.register_script(_COMPARE_AND_DELETE)
        self._hit = self._client.register_script(_HIT)
        self._gcra = self._client.register_script(GCRA_SCRIPT)
        self._gcra_defer = self._client.register_script(GCRA_DEFER_SCRIPT)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisBackend:
        url = settings.redis_url.reveal() if settings.redis_url is not None else None
        return cls(
            url,
            settings.redis_prefix,
            topology=settings.redis_topology,
            ca_bundle=settings.ca_bundle,
        )

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def get(self, key: str) -> bytes | None:
        value = await _answer(self._client.get(self._key(key)))
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await _answer(self._client.set(self._key(key), value, px=_ms(ttl)))

    async def set_announced(self, key: str, value: bytes, ttl: float) -> None:
        if self.announces:
            args = [value, _ms(ttl), channel_name(self._prefix), key]
            if not await _answer(self._set_and_publish(keys=[self._key(key)], args=args)):
                log.warning("Redis refused to publish on %s (ACL?)", channel_name(self._prefix))
        else:
            await self.set(key, value, ttl)

    async def listen(self, listener: Listener) -> None:
        if not self.announces:
            raise BackendUnavailable("announcements need one Redis node or Sentinel")
        await _answer(listen(self._client, self._prefix, listener))

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await _answer(self._client.set(self._key(key), value, px=_ms(ttl), nx=True)))

    async def delete_if(self, key: str, value: bytes) -> None:
        await _answer(self._compare_and_delete(keys=[self._key(key)], args=[value]))

    async def incr(self, key: str) -> int:
        return int(await _answer(self._client.incr(self._key(key))))

    async def hit(self, key: str, window: float) -> int:
        return int(await _answer(self._hit(keys=[self._key(key)], args=[_ms(window)])))

    async def exists(self, key: str) -> bool:
        return bool(await _answer(self._client.exists(self._key(key))))

    async def gcra(self, key: str, budget: Budget, max_delay: float) -> Admission:
        reply = await _answer(
            self._gcra(keys=[self._key(key)], args=list(gcra_micros(budget, max_delay)))
        )
        return admission_from_reply(reply)

    async def gcra_defer(self, key: str, budget: Budget, hold: float) -> None:
        interval, burst, hold_us = gcra_micros(budget, hold)
        await _answer(self._gcra_defer(keys=[self._key(key)], args=[interval, burst, hold_us]))

    async def ping(self) -> None:
        await _answer(self._client.ping())

    async def close(self) -> None:
        await self._connection.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


async def _answer(pending: Awaitable[Any]) -> Any:
    # Loaded by RedisBackend already: dict lookups. RedisClusterException (a cluster that
    # cannot be reached or mapped) is not a RedisError. AttributeError: redis-py's cluster
    # client closes every connection on some errors (CLUSTERDOWN when a node dies), and a
    # command then in flight on one of them fails inside redis-py with it (redis-py 8.1;
    # tests/shared/test_redis_modes.py kills a cluster node under load).
    from redis.exceptions import RedisClusterException, RedisError

    try:
        return await pending
    except (RedisError, RedisClusterException, OSError, TimeoutError, AttributeError) as error:
        raise BackendUnavailable(type(error).__name__) from None
