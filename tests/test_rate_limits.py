"""Knock's rate-limit tiers, per environment (and user), shared by replicas through Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.app import create_app
from provider_gateway.config import ConfigError, Settings, load_settings
from provider_gateway.web.appkeys import GATEWAY
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.support import World, seed_world, serve, tenant_uri

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})
BURST = 20
LIMIT = 3


def _auth_check(client: TestClient, world: World, headers: dict[str, str] | None = None) -> Any:
    # No token is stored, so an allowed request is a quick 403: nothing goes upstream.
    return client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=headers or world.secret_headers(),
    )


async def _statuses(requests: list[Any]) -> list[int]:
    return [response.status for response in await asyncio.gather(*requests)]


def _allowed_at_most(statuses: list[int]) -> None:
    # A burst may straddle one second boundary: at most two windows' worth get through.
    assert statuses.count(429) >= BURST - 2 * LIMIT, statuses
    assert set(statuses) <= {403, 429}


@pytest.fixture
async def limited(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> TestClient:
    return await serve(aiohttp_client, create_app(make_settings(GATEWAY_RATE_LIMITS=f"2={LIMIT}")))


async def test_a_burst_over_the_tier_gets_429_in_knocks_body(limited: TestClient) -> None:
    world = await seed_world(limited.app[GATEWAY])
    responses = await asyncio.gather(*(_auth_check(limited, world) for _ in range(BURST)))
    _allowed_at_most([response.status for response in responses])
    refused = next(response for response in responses if response.status == 429)
    assert refused.headers["Retry-After"] == "1"
    body = await refused.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert set(body) == {"code", "message", "status", "type"}


async def test_budgets_are_per_environment_and_per_user(limited: TestClient) -> None:
    world = await seed_world(limited.app[GATEWAY])
    other_environment = await seed_world(limited.app[GATEWAY])
    _allowed_at_most(await _statuses([_auth_check(limited, world) for _ in range(BURST)]))
    # Right after: another environment, and a browser user, each have their own budget.
    assert 429 not in await _statuses([_auth_check(limited, other_environment) for _ in range(2)])
    grants = {tenant_uri("acme"): {"slack/channels_read": [{}]}}
    browser = world.public_headers(world.user_token(sub="user-9", grants=grants))
    assert 429 not in await _statuses([_auth_check(limited, world, browser) for _ in range(2)])


async def test_other_tiers_are_not_counted_against_providers(limited: TestClient) -> None:
    world = await seed_world(limited.app[GATEWAY])
    path = f"/v1/objects/projects/p1/channel_data/{world.slack.id}"
    statuses = await _statuses(
        [limited.get(path, headers=world.secret_headers()) for _ in range(BURST)]
    )
    assert 429 not in statuses  # channel data reads are tier 4 (200/s)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


async def test_replicas_share_one_budget(
    aiohttp_client: Any, make_settings: Callable[..., Settings], redis_prefix: str
) -> None:
    settings = make_settings(
        GATEWAY_RATE_LIMITS=f"2={LIMIT}",
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=redis_prefix,
    )
    replicas = [await serve(aiohttp_client, create_app(settings)) for _ in range(2)]
    world = await seed_world(replicas[0].app[GATEWAY])
    _allowed_at_most(await _statuses([_auth_check(replicas[i % 2], world) for i in range(BURST)]))


def test_rate_limit_setting() -> None:
    assert load_settings({}).rate_limits == {1: 1, 2: 5, 3: 60, 4: 200, 5: 1000}
    assert load_settings({"GATEWAY_RATE_LIMITS": "off"}).rate_limits == {}
    assert load_settings({"GATEWAY_RATE_LIMITS": "2=20"}).rate_limits[2] == 20
    for bad in ("2=0", "9=5", "fast"):
        with pytest.raises(ConfigError, match="GATEWAY_RATE_LIMITS"):
            load_settings({"GATEWAY_RATE_LIMITS": bad})
