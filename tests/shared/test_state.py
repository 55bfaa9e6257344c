"""SharedState, locks and one-time keys on both backends."""

from __future__ import annotations

import asyncio

import pytest

from provider_gateway.config import RedisTopology
from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.state import SharedLocks, SharedOneTimeKeys, SharedState
from tests.shared.conftest import MakeBackend


async def test_basic_operations(shared_state: SharedState) -> None:
    assert await shared_state.get("k") is None
    await shared_state.set("k", b"v", 5)
    assert await shared_state.get("k") == b"v"
    assert await shared_state.add("once", b"a", 5) is True
    assert await shared_state.add("once", b"b", 5) is False
    await shared_state.delete_if("once", b"someone-else")
    assert await shared_state.exists("once")
    await shared_state.delete_if("once", b"a")
    assert not await shared_state.exists("once")
    assert [await shared_state.incr("n") for _ in range(3)] == [1, 2, 3]


async def test_entries_expire(shared_state: SharedState) -> None:
    await shared_state.set("short", b"v", 0.05)
    await asyncio.sleep(0.12)
    assert await shared_state.get("short") is None


async def test_one_time_keys(shared_state: SharedState) -> None:
    keys = SharedOneTimeKeys(shared_state)
    results = await asyncio.gather(*(keys.claim("state-1", 60) for _ in range(20)))
    assert results.count(True) == 1


async def test_locks_exclude_across_replicas(make_backend: MakeBackend, redis_prefix: str) -> None:
    """Two SharedLocks on one Redis, as two replicas have: never inside together."""
    states = [SharedState(make_backend(redis_prefix)) for _ in range(2)]
    locks = [SharedLocks(state) for state in states]
    inside, overlaps = 0, 0

    async def work(lock: SharedLocks) -> None:
        nonlocal inside, overlaps
        async with lock.hold("tenant-1"):
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(work(locks[i % 2]) for i in range(20)))
    assert overlaps == 0
    for state in states:
        await state.close()


@pytest.mark.parametrize("mode", ["node", "sentinel", "cluster"])
async def test_an_unreachable_redis_degrades_to_in_process(unused_tcp_port: int, mode: str) -> None:
    url = f"redis://127.0.0.1:{unused_tcp_port}/0"
    topology = {
        "node": RedisTopology(),
        "sentinel": RedisTopology(sentinels=(("127.0.0.1", unused_tcp_port),), sentinel_master="m"),
        "cluster": RedisTopology(cluster=True),
    }[mode]
    state = SharedState(RedisBackend(url, "p", topology=topology))
    assert await state.check() == "degraded"
    await state.set("k", b"v", 5)  # no exception: served in-process
    assert await state.get("k") == b"v"
    assert await SharedOneTimeKeys(state).claim("s", 60) is True
    assert await SharedOneTimeKeys(state).claim("s", 60) is False
    async with SharedLocks(state).hold("x"):
        pass
    assert state.degraded_since is not None
    await state.close()
