"""The redis-py client for each Redis deployment: one node (TLS or not), Sentinel, Cluster.

All three answer the same commands and `register_script`, so the backend above them does not
know which it has. redis-py is imported only when Redis is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from provider_gateway.config import RedisTopology

# Redis answers in well under a millisecond; the bound is generous because the reply is read
# by our own event loop, which under load may get to it late even when Redis was quick.
REDIS_TIMEOUT_SECONDS = 1.0
TLS_CONNECTIONS = 16  # per replica; each Redis operation holds one for well under a millisecond


@dataclass(frozen=True)
class RedisConnection:
    """A redis-py client (Redis or RedisCluster), and the Sentinel clients behind it if any."""

    client: Any
    sentinel: Any = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def connect_redis(
    url: str | None, topology: RedisTopology, ca_bundle: Path | None = None
) -> RedisConnection:
    """A client for `topology` (connecting lazily): a failure is one prompt error, never
    seconds of retries."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        # redis-py's default is retries with backoff, on timeouts too: seconds per call when
        # Redis is down. One immediate retry on a connection error is enough to get past a
        # pooled socket that died with a restarted Redis (or a failed-over master); a timeout
        # is final.
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
    if url is not None and URL(url).scheme == "rediss" and ca_bundle is not None:
        # Added to the system store, as for every other outbound TLS call.
        options["ssl_ca_certs"] = str(ca_bundle)
    if topology.mode == "sentinel":
        return _through_sentinels(url, topology, options)
    assert url is not None  # config.py requires it outside Sentinel mode
    if topology.mode == "cluster":
        from provider_gateway.shared.redis_cluster import MappedRedisCluster

        return RedisConnection(MappedRedisCluster.from_url(url, **options))
    import redis.asyncio as redis

    if URL(url).scheme == "rediss":
        # A TLS handshake costs milliseconds of CPU (tens on a loaded host): a burst of
        # requests on a cold replica, each opening its own connection, overruns the connect
        # timeout (100 at once took 3 s here). A bounded pool makes a burst wait, within the
        # same timeout, for the few connections it has; the handshakes are then paid once.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=TLS_CONNECTIONS,
            timeout=REDIS_TIMEOUT_SECONDS,
            health_check_interval=10,
            **options,
        )
        return RedisConnection(redis.Redis.from_pool(pool))
    return RedisConnection(redis.Redis.from_url(url, health_check_interval=10, **options))


def _through_sentinels(
    url: str | None, topology: RedisTopology, options: dict[str, Any]
) -> RedisConnection:
    """The master the Sentinels name, asked again on every new connection: after a failover
    the next connection goes to the promoted replica (redis-py's SentinelConnectionPool)."""
    from redis.asyncio.connection import parse_url
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff

    assert topology.sentinel_master is not None
    # Password, username and db for the master; its address comes from the Sentinels.
    master = {
        name: value
        for name, value in (parse_url(url) if url else {}).items()
        if name not in {"host", "port", "connection_class"}
    }
    sentinel_options = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 0),  # a Sentinel that does not answer: ask the next one
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(topology.sentinels), sentinel_kwargs=sentinel_options
    )
    client = sentinel.master_for(
        topology.sentinel_master, health_check_interval=10, **{**master, **options}
    )
    return RedisConnection(client, sentinel)


def describe_redis(url: str | None, topology: RedisTopology) -> str:
    """The deployment in words, for the start-up summary and `doctor` (never a password)."""
    shown = None
    if url is not None:
        parsed = URL(url)
        shown = str(parsed.with_password("***")) if parsed.password else str(parsed)
    if topology.mode == "sentinel":
        nodes = ",".join(f"{host}:{port}" for host, port in topology.sentinels)
        return f"sentinel (master {topology.sentinel_master!r} via {nodes})"
    if topology.mode == "cluster":
        return f"cluster (startup node {shown})"
    tls = " with TLS" if url is not None and URL(url).scheme == "rediss" else ""
    return f"node{tls} ({shown})"
