"""The listing cache: single-flight, generations, and replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import redis.asyncio as redis

from provider_gateway.models import Recipient
from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.listings import GENERATION_TTL_SECONDS, ListingCache
from provider_gateway.shared.state import SharedState
from tests.shared.conftest import REDIS_URL, MakeBackend

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
