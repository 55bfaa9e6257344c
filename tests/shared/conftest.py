"""Shared-state tests run on the in-process backend and on the local Redis server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.state import SharedState
from tests.support import drop_redis_prefix

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def drop_prefix(prefix: str) -> None:
    await drop_redis_prefix(REDIS_URL, prefix)


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
