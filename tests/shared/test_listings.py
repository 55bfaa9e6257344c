"""The listing cache: single-flight, generations, and replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from provider_gateway.models import Recipient
from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.generations import LocalGenerations
from provider_gateway.shared.listings import GENERATION_TTL_SECONDS, ListingCache
from provider_gateway.shared.state import SharedState
from tests.shared.conftest import REDIS_URL, MakeBackend
from tests.shared.redis_servers import RedisProcesses

TENANT = Recipient.object("$tenants", "acme")


def _loader(calls: list[int], delay: float = 0.05) -> Any:
    async def load() -> dict[str, Any]:
        calls.append(1)
        await asyncio.sleep(delay)
        return {"page": len(calls)}

    return load


async def _get(
    cache: ListingCache, load: Any, query: dict[str, Any] | None = None
) -> dict[str, Any]:
    generation = await cache.generation("env", "chan", TENANT)
    page = await cache.get_or_load(
        "env",
        "chan",
        TENANT,
        generation=generation,
        kind="slack.channels",
        credential="xoxb-1",
        query=query or {},
        load=load,
    )
    decoded: dict[str, Any] = json.loads(page)
    return decoded


async def test_identical_concurrent_misses_make_one_call(shared_state: SharedState) -> None:
    cache, calls = ListingCache(shared_state, 60), []
    results = await asyncio.gather(*(_get(cache, _loader(calls)) for _ in range(100)))
    assert len(calls) == 1
    assert all(result == {"page": 1} for result in results)
    # Each of the others joined the one call, or (when its first read came late, as on a
    # cold Sentinel client that asks the Sentinels on each new connection) found its result.
    assert cache.stats.misses == 1
    assert cache.stats.joins + cache.stats.hits == 99
    hits = cache.stats.hits
    assert await _get(cache, _loader(calls)) == {"page": 1}  # and then a hit
    assert len(calls) == 1
    assert cache.stats.hits == hits + 1
    assert cache.stats.misses == 1


async def test_different_queries_are_different_entries(shared_state: SharedState) -> None:
    cache, calls = ListingCache(shared_state, 60), []
    await _get(cache, _loader(calls), {"cursor": None})
    await _get(cache, _loader(calls), {"cursor": "abc"})
    assert len(calls) == 2


async def test_queries_with_unhashable_values_are_cached_too(shared_state: SharedState) -> None:
    cache, calls = ListingCache(shared_state, 60), []
    for _ in range(2):
        assert await _get(cache, _loader(calls, 0), {"types": ["public", "private"]}) == {"page": 1}
    assert await _get(cache, _loader(calls, 0), {"types": ["public"]}) == {"page": 2}
    assert len(calls) == 2


async def test_invalidation_is_immediate(shared_state: SharedState) -> None:
    cache, calls = ListingCache(shared_state, 60), []
    await _get(cache, _loader(calls))
    await cache.invalidate("env", "chan", TENANT)
    assert await _get(cache, _loader(calls)) == {"page": 2}


async def test_errors_are_not_cached(shared_state: SharedState) -> None:
    cache, attempts = ListingCache(shared_state, 60), []

    async def failing() -> dict[str, Any]:
        attempts.append(1)
        raise RuntimeError("upstream down")

    for _ in range(2):
        with contextlib.suppress(RuntimeError):
            await _get(cache, failing)
    assert len(attempts) == 2


async def test_ttl_zero_disables_caching(shared_state: SharedState) -> None:
    cache, calls = ListingCache(shared_state, 0), []
    await _get(cache, _loader(calls))
    await _get(cache, _loader(calls))
    assert len(calls) == 2


async def test_replicas_sharing_redis_make_one_call_per_page(
    make_backend: MakeBackend, redis_prefix: str
) -> None:
    states = [SharedState(make_backend(redis_prefix)) for _ in range(2)]
    caches = [ListingCache(state, 60) for state in states]
    calls: list[int] = []
    results = await asyncio.gather(*(_get(caches[i % 2], _loader(calls, 0.2)) for i in range(100)))
    assert len(calls) == 1
    assert {tuple(r.items()) for r in results} == {(("page", 1),)}
    for state in states:
        await state.close()


async def test_a_waiter_falls_back_when_the_filler_is_stuck(
    make_backend: MakeBackend, redis_prefix: str
) -> None:
    """Another replica holds the fill lock and its upstream call hangs (or it died): the
    waiting replica answers with its own call once its bounded wait is over."""
    stuck_state = SharedState(make_backend(redis_prefix))
    stuck = ListingCache(stuck_state, 60)
    started, release = asyncio.Event(), asyncio.Event()

    async def hangs() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"page": "late"}

    filler = asyncio.ensure_future(_get(stuck, hangs))
    await started.wait()

    survivor_state = SharedState(make_backend(redis_prefix))
    survivor, calls = ListingCache(survivor_state, 60, max_wait=0.3), []
    assert await _get(survivor, _loader(calls)) == {"page": 1}
    assert len(calls) == 1
    assert not filler.done()

    release.set()
    await filler
    for state in (stuck_state, survivor_state):
        await state.close()


async def test_an_expired_generation_never_revives_older_entries(
    shared_state: SharedState,
) -> None:
    """A generation that expired (or Redis evicted) is re-made as a fresh random value, never
    one used before: with a counter restarting from its first value, the page cached under
    that value would be served again after the tenant's data changed."""
    cache, calls = ListingCache(shared_state, 60, generation_ttl=0.2), []
    first = await cache.generation("env", "chan", TENANT)
    assert await _get(cache, _loader(calls, 0)) == {"page": 1}
    await cache.invalidate("env", "chan", TENANT)  # e.g. the token was replaced
    second = await cache.generation("env", "chan", TENANT)
    assert await _get(cache, _loader(calls, 0)) == {"page": 2}
    await asyncio.sleep(0.3)  # the generation key expires; the pages (60 s) are still there
    third = await cache.generation("env", "chan", TENANT)
    assert third not in {first, second}
    assert await _get(cache, _loader(calls, 0)) == {"page": 3}
    assert await cache.generation("env", "chan", TENANT) == third  # stable until it changes


async def test_generation_keys_expire_after_the_pages_cached_under_them(
    redis_prefix: str,
) -> None:
    state = SharedState(RedisBackend(REDIS_URL, redis_prefix))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        cache = ListingCache(state, 60)
        await _get(cache, _loader([], 0))
        await cache.invalidate("env", "chan", TENANT)
        ttls = {
            key.decode().split(":")[1]: await client.ttl(key)
            async for key in client.scan_iter(f"{redis_prefix}:*")
        }
        assert ttls["listing"] == 60
        assert 2 * 60 < ttls["generation"] <= GENERATION_TTL_SECONDS
    finally:
        await client.aclose()
        await state.close()


# Replicas learning of writes over pub/sub -------------------------------------------------


@contextlib.asynccontextmanager
async def _listening(cache: ListingCache) -> AsyncIterator[asyncio.Task[None]]:
    """The replica's announcement subscriber, running and (where there is one) subscribed."""
    before = cache.generations.subscriptions
    task = asyncio.create_task(cache.generations.run())
    try:
        if cache.generations.announcing:
            await _until(lambda: cache.generations.subscriptions > before)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class CountingBackend:
    """A Redis backend that counts the commands it is asked for (subscription aside)."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self.announces = backend.announces
        self.commands = 0

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._backend, name)
        if name in {"listen", "close"}:
            return operation

        async def counted(*args: Any) -> Any:
            self.commands += 1
            return await operation(*args)

        return counted


def _counter(calls: list[int]) -> Any:
    """A loader whose pages count the upstream calls made by every replica."""

    async def load() -> dict[str, Any]:
        calls.append(1)
        return {"page": len(calls)}

    return load


async def test_a_write_on_one_replica_reaches_the_other_and_old_pages_stop(
    make_backend: MakeBackend, redis_prefix: str
) -> None:
    states = [SharedState(make_backend(redis_prefix)) for _ in range(2)]
    writer, reader = (ListingCache(state, 60) for state in states)
    calls: list[int] = []
    async with _listening(writer), _listening(reader):
        assert await _get(reader, _counter(calls)) == {"page": 1}
        assert await _get(reader, _counter(calls)) == {"page": 1}  # hot
        for write in range(2, 5):
            await writer.invalidate("env", "chan", TENANT)
            served: list[int] = []
            deadline = time.monotonic() + 5
            while not served or served[-1] != write:
                assert time.monotonic() < deadline, served
                served.append((await _get(reader, _counter(calls)))["page"])
            assert served == sorted(served)  # never the old page once the new one was served
            assert (await _get(reader, _counter(calls)))["page"] == write
    for state in states:
        await state.close()


async def test_a_hot_hit_makes_no_redis_command(redis_prefix: str) -> None:
    counting = CountingBackend(RedisBackend(REDIS_URL, redis_prefix))
    state = SharedState(counting)  # type: ignore[arg-type]
    cache, calls = ListingCache(state, 60), []
    async with _listening(cache):
        await _get(cache, _counter(calls))  # a miss: reads the generation, fills the page
        await _get(cache, _counter(calls))  # a hit, from the copies the miss left
        before = counting.commands
        for _ in range(20):
            assert await _get(cache, _counter(calls)) == {"page": 1}
        assert counting.commands == before
        assert cache.stats.hits == 21
        # A write on this replica is seen at once, and makes commands again.
        await cache.invalidate("env", "chan", TENANT)
        assert await _get(cache, _counter(calls)) == {"page": 2}
        assert counting.commands > before
    await state.close()


async def test_without_a_subscription_every_hit_reads_the_generation(redis_prefix: str) -> None:
    """A stopped subscriber (or a cluster) vouches for nothing: writes are seen at once."""
    counting = CountingBackend(RedisBackend(REDIS_URL, redis_prefix))
    state = SharedState(counting)  # type: ignore[arg-type]
    other = SharedState(RedisBackend(REDIS_URL, redis_prefix))
    cache, writer, calls = ListingCache(state, 60), ListingCache(other, 60), []
    async with _listening(cache):
        await _get(cache, _counter(calls))
    before = counting.commands
    await _get(cache, _counter(calls))
    assert counting.commands == before + 1  # the generation; the page is an in-process copy
    await writer.invalidate("env", "chan", TENANT)
    assert await _get(cache, _counter(calls)) == {"page": 2}
    for each in (state, other):
        await each.close()


async def test_a_killed_subscription_is_noticed_and_writes_are_seen_meanwhile(
    redis_prefix: str,
) -> None:
    admin = redis.Redis.from_url(REDIS_URL)
    states = [SharedState(RedisBackend(REDIS_URL, redis_prefix)) for _ in range(2)]
    writer, reader = (ListingCache(state, 60) for state in states)
    calls: list[int] = []
    try:
        others = await _subscriber_ids(admin)
        async with _listening(reader):
            ours = await _subscriber_ids(admin) - others
            assert ours, "the reader's subscription is listed"
            assert await _get(reader, _counter(calls)) == {"page": 1}
            for client_id in ours:
                await admin.execute_command("CLIENT", "KILL", "ID", str(client_id))
            await _until(lambda: reader.generations.subscriptions == 2)  # noticed, resubscribed
            await writer.invalidate("env", "chan", TENANT)
            assert await _get(reader, _counter(calls)) == {"page": 2}
            assert await _get(reader, _counter(calls)) == {"page": 2}  # hot again
            await writer.invalidate("env", "chan", TENANT)  # heard over the new subscription
            pages = [(await _get(reader, _counter(calls)))["page"]]
            while pages[-1] != 3:
                await asyncio.sleep(0.01)
                pages.append((await _get(reader, _counter(calls)))["page"])
                assert len(pages) < 500, pages
    finally:
        await admin.aclose()
        for state in states:
            await state.close()


async def _subscriber_ids(admin: redis.Redis) -> set[int]:
    clients = await admin.client_list(_type="pubsub")
    return {int(client["id"]) for client in clients}


async def test_a_read_overtaken_by_an_announcement_is_not_kept(redis_prefix: str) -> None:
    state = SharedState(RedisBackend(REDIS_URL, redis_prefix))
    cache = ListingCache(state, 60)
    async with _listening(cache):
        generations = cache.generations
        ticket = generations.ticket()
        assert ticket is not None
        generations.changed("generation:elsewhere")  # heard while the read was in flight
        generations.keep("generation:k", "old", ticket)
        assert generations.lookup("generation:k") is None
        generations.keep("generation:k", "current", generations.ticket())
        assert generations.lookup("generation:k") == "current"
    assert generations.lookup("generation:k") is None  # the subscription ended: forgotten
    assert generations.ticket() is None
    await state.close()


async def test_a_page_copy_expires_with_the_redis_entry(redis_prefix: str) -> None:
    """Replica B copies a page late in its life: the copy goes when Redis's entry goes, not
    a whole TTL after B read it."""
    admin = redis.Redis.from_url(REDIS_URL)
    states = [SharedState(RedisBackend(REDIS_URL, redis_prefix)) for _ in range(2)]
    filler, late = (ListingCache(state, 3) for state in states)
    calls: list[int] = []
    try:
        assert await _get(filler, _counter(calls)) == {"page": 1}
        [page_key] = [key async for key in admin.scan_iter(f"{redis_prefix}:listing:*")]
        deadline = time.monotonic() + 10
        while await admin.pttl(page_key) > 1500:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await _get(late, _counter(calls)) == {"page": 1}  # copied, ~1.5 s left
        assert await _get(late, _counter(calls)) == {"page": 1}
        deadline = time.monotonic() + 10
        while await admin.exists(page_key):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await _get(late, _counter(calls)) == {"page": 2}
        assert late.stats.hits == 2
    finally:
        await admin.aclose()
        for state in states:
            await state.close()


async def test_a_user_refused_the_channel_still_writes_and_reads_every_generation(
    redis_prefix: str,
) -> None:
    """Redis 7 gives new ACL users no channels: no subscription, no announcement, and every
    write still lands (and is seen by the other replica at once)."""
    admin = redis.Redis.from_url(REDIS_URL)
    user = f"{redis_prefix}-user"
    await admin.execute_command(
        "ACL", "SETUSER", user, "on", "nopass", f"~{redis_prefix}:*", "resetchannels", "+@all"
    )
    url = REDIS_URL.replace("redis://", f"redis://{user}:x@")
    states = [SharedState(RedisBackend(url, redis_prefix)) for _ in range(2)]
    writer, reader = (ListingCache(state, 60) for state in states)
    calls: list[int] = []
    try:
        task = asyncio.create_task(reader.generations.run())
        assert await _get(reader, _counter(calls)) == {"page": 1}
        await writer.invalidate("env", "chan", TENANT)
        assert await _get(reader, _counter(calls)) == {"page": 2}
        assert reader.generations.subscriptions == 0
        assert [state.degraded_since for state in states] == [None, None]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for state in states:
            await state.close()
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def test_the_subscription_connection_goes_back_to_the_pool_as_it_came(
    tmp_path: Path,
) -> None:
    """The subscription turns off redis-py's reconnect on its connection; once it ends, that
    connection serves commands again, which must still get past a dropped socket."""
    servers = RedisProcesses(tmp_path)
    try:
        port = servers.start()
        url = f"redis://127.0.0.1:{port}/0"
        admin = redis.Redis.from_url(url)
        await _until_answers(admin)
        state = SharedState(RedisBackend(url, "pgw-test"))
        async with _listening(ListingCache(state, 60)):
            pass
        own = {int(client["id"]) for client in await admin.client_list()}
        await state.get("any")  # on the subscription's connection, connected again
        for client in await admin.client_list():
            if int(client["id"]) not in own:
                await admin.execute_command("CLIENT", "KILL", "ID", client["id"])
        assert await state.get("any") is None
        assert state.failures == 0  # reconnected, not degraded
        await state.close()
        await admin.aclose()
    finally:
        servers.stop()


async def _until_answers(client: redis.Redis) -> None:
    for _ in range(500):
        with contextlib.suppress(redis.ConnectionError):
            await client.ping()
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the Redis server did not start")


async def test_a_kept_generation_is_trusted_for_a_bounded_time(redis_prefix: str) -> None:
    """Even with the subscription healthy, a copy is read from Redis again after the bound:
    the limit on staleness should a lost announcement go unnoticed."""
    state = SharedState(RedisBackend(REDIS_URL, redis_prefix))
    generations = LocalGenerations(state, trust_seconds=0.2)
    generations.subscribed()  # as the subscription reports it
    generations.keep("generation:k", "g1", generations.ticket())
    assert generations.lookup("generation:k") == "g1"
    deadline = time.monotonic() + 10
    while generations.lookup("generation:k") is not None:
        assert time.monotonic() < deadline
        generations.alive()
        await asyncio.sleep(0.05)
    await state.close()
