"""Graph app tokens shared by replicas through Redis, encrypted."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.support import seed_world, serve

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


async def test_replicas_share_one_graph_token_and_redis_holds_only_ciphertext(
    aiohttp_client: Any,
    settings: Settings,
    fake_microsoft: FakeMicrosoft,
    redis_prefix: str,
    make_settings: Callable[..., Settings],
) -> None:
    shared = make_settings(
        MS_LOGIN_URL=settings.ms_login_url,
        MS_GRAPH_URL=settings.ms_graph_url,
        GATEWAY_CA_BUNDLE=str(settings.ca_bundle),
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=redis_prefix,
        GATEWAY_CACHE_TTL_SECONDS="0",  # every request reaches Graph: only the token is shared
    )
    replicas = [await serve(aiohttp_client, create_app(shared)) for _ in range(2)]
    world = await seed_world(replicas[0].app[GATEWAY])
    fake_microsoft.register_app(world.teams.client_id, world.teams.client_secret.reveal())
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.add_teams(TENANT_ID, 3)
    await connect_tenant(replicas[0], world, TENANT_ID)
    fake_microsoft.token_delay = 0.2

    responses = await asyncio.gather(
        *(
            replicas[i % 2].get(
                f"/v1/providers/ms-teams/{world.teams.id}/teams",
                params={"ms_teams_tenant_object": TENANT},
                headers=world.secret_headers(),
            )
            for i in range(40)
        )
    )
    assert [response.status for response in responses] == [200] * 40
    assert len(fake_microsoft.token_requests) == 1
    assert len(fake_microsoft.graph_calls_to("/v1.0/teams")) == 40

    issued = {call.token for call in fake_microsoft.graph_calls}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        stored = [await client.get(key) async for key in client.scan_iter(f"{redis_prefix}:*")]
    finally:
        await client.aclose()
    assert stored
    assert not any(
        token and token.encode() in (value or b"") for token in issued for value in stored
    )
