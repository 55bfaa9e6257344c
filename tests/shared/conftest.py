"""Shared-state tests run on the in-process backend, on the local Redis server, and on Redis
servers of their own over TLS, through Sentinel and as a Cluster (marked `redis_servers`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from provider_gateway.config import RedisTopology
from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.state import SharedState
from tests.shared.redis_servers import (
    MASTER_NAME,
    Cluster,
    RedisProcesses,
    SentinelSet,
    TlsRedis,
    start_cluster,
    start_sentinel_set,
    start_tls_redis,
)
from tests.support import drop_redis_prefix

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Each started once per session and shared: every test writes under its own key prefix.
REDIS_MODES = [
    "redis",
    pytest.param("tls", marks=pytest.mark.redis_servers),
    pytest.param("sentinel", marks=pytest.mark.redis_servers),
    pytest.param("cluster", marks=pytest.mark.redis_servers),
]

MakeBackend = Callable[[str], RedisBackend]


async def drop_prefix(prefix: str) -> None:
    await drop_redis_prefix(REDIS_URL, prefix)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


def _processes(factory: pytest.TempPathFactory, name: str) -> RedisProcesses:
    return RedisProcesses(factory.mktemp(name))


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    servers = _processes(tmp_path_factory, "redis-tls")
    try:
        yield start_tls_redis(servers)
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """For tests that leave the master alone (the failover test starts a set of its own)."""
    servers = _processes(tmp_path_factory, "redis-sentinel")
    try:
        yield start_sentinel_set(servers)
    finally:
        servers.stop()


@pytest.fixture
def own_sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    servers = RedisProcesses(tmp_path)
    try:
        yield start_sentinel_set(servers)
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    servers = _processes(tmp_path_factory, "redis-cluster")
    try:
        yield start_cluster(servers)
    finally:
        servers.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """For a test that kills a node: the others call it failed after 1 s (CLUSTERDOWN)."""
    servers = RedisProcesses(tmp_path)
    try:
        yield start_cluster(servers, node_timeout_ms=1000)
    finally:
        servers.stop()


def backend_factory(request: pytest.FixtureRequest, mode: str) -> MakeBackend:
    """Backends (one per replica) on the Redis deployment `mode` names."""
    if mode == "tls":
        tls: TlsRedis = request.getfixturevalue("tls_redis")
        return lambda prefix: RedisBackend(tls.url, prefix, ca_bundle=tls.ca_bundle)
    if mode == "sentinel":
        sentinels: SentinelSet = request.getfixturevalue("sentinel_set")
        topology = RedisTopology(
            sentinels=tuple(("127.0.0.1", port) for port in sentinels.sentinels),
            sentinel_master=MASTER_NAME,
        )
        return lambda prefix: RedisBackend(None, prefix, topology=topology)
    if mode == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        clustered = RedisTopology(cluster=True)
        return lambda prefix: RedisBackend(cluster.url, prefix, topology=clustered)
    return lambda prefix: RedisBackend(REDIS_URL, prefix)


@pytest.fixture(params=REDIS_MODES)
def make_backend(request: pytest.FixtureRequest) -> MakeBackend:
    return backend_factory(request, request.param)


@pytest.fixture(params=["memory", *REDIS_MODES])
async def shared_state(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[SharedState]:
    backend = None if request.param == "memory" else backend_factory(request, request.param)
    state = SharedState(backend(redis_prefix) if backend else None)
    if backend is not None:
        assert await state.check() == "ok"  # really on that deployment, not degraded
    yield state
    await state.close()
