"""Shared-state tests run on the in-process backend and on the local Redis server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.state import SharedState

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def drop_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


@pytest.fixture(params=["memory", "redis"])
async def shared_state(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[SharedState]:
    backend = RedisBackend(REDIS_URL, redis_prefix) if request.param == "redis" else None
    state = SharedState(backend)
    yield state
    await state.close()
