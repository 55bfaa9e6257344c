"""Upstream pacing for Graph: calls for one Entra tenant keep within Graph's per-tenant limit,
Graph's own 429/503 Retry-After holds that tenant's budget, other tenants are not slowed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft, GraphFailure
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.support import World, seed_world, serve

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})
OTHER_TENANT_ID = "7a9d2e3f-0000-4b7c-8d2e-3f4a5b6c7d8e"


def _settings(
    make_settings: Callable[..., Settings], fake: FakeMicrosoft, ca_bundle: Path, **extra: str
) -> Settings:
    return make_settings(
        MS_LOGIN_URL=fake.login_url,
        MS_GRAPH_URL=fake.graph_url,
        GATEWAY_CA_BUNDLE=str(ca_bundle),
        **extra,
    )


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], fake_microsoft: FakeMicrosoft, ca_bundle: Path
) -> Settings:
    # Half a second of waiting: a loaded machine cannot bunch arrivals past Graph's 1 s rule.
    return _settings(
        make_settings, fake_microsoft, ca_bundle, GATEWAY_UPSTREAM_MAX_WAIT_SECONDS="0.5"
    )


async def _connected(client: TestClient, world: World, fake: FakeMicrosoft) -> World:
    fake.consent(world.teams.client_id, TENANT_ID)
    fake.add_teams(TENANT_ID, 70)
    await connect_tenant(client, world, TENANT_ID)
    return world


@pytest.fixture
async def connected(client: TestClient, world: World, fake_microsoft: FakeMicrosoft) -> World:
    return await _connected(client, world, fake_microsoft)


def _teams(client: TestClient, world: World, tenant: str = TENANT, **options: str) -> Any:
    params = {
        "ms_teams_tenant_object": tenant,
        **{f"query_options[${k}]": v for k, v in options.items()},
    }
    return client.get(
        f"/v1/providers/ms-teams/{world.teams.id}/teams",
        params=params,
        headers=world.secret_headers(),
    )


async def _burst(client: TestClient, world: World) -> list[int]:
    """Sixty different pages at once: none cached, each needs its own Graph call."""
    responses = await asyncio.gather(*(_teams(client, world, top=str(n)) for n in range(1, 61)))
    for response in responses:
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["code"] == "rate_limited"
    return [response.status for response in responses]


async def test_concurrent_uncached_listings_keep_within_graphs_tenant_limit(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.graph_per_second = 30
    statuses = await _burst(client, connected)
    assert set(statuses) <= {200, 429}, statuses
    assert fake_microsoft.graph_throttled == []
    calls = fake_microsoft.graph_calls_to("/v1.0/teams")
    assert len(calls) == statuses.count(200)
    # The burst (6) went at once, more followed within the half second's wait (how many
    # depends on how fast the sixty arrive), and the rest were told when to come back.
    assert statuses.count(200) > 6
    assert 429 in statuses


async def test_without_pacing_the_same_burst_breaks_graphs_limit(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_microsoft: FakeMicrosoft,
    ca_bundle: Path,
) -> None:
    """The control for the test above: the fake's limit does bite when nothing paces."""
    settings = _settings(make_settings, fake_microsoft, ca_bundle, GATEWAY_UPSTREAM_PACING="off")
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    fake_microsoft.register_app(world.teams.client_id, world.teams.client_secret.reveal())
    await _connected(client, world, fake_microsoft)
    fake_microsoft.graph_per_second = 30
    await _burst(client, world)
    assert fake_microsoft.graph_throttled


@pytest.mark.parametrize("status", [429, 503])
async def test_graphs_retry_after_holds_the_tenant(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft, status: int
) -> None:
    fake_microsoft.fail_graph(GraphFailure(status=status, retry_after=45))
    first = await _teams(client, connected, top="1")
    assert first.headers["Retry-After"] == "45"
    # Another page during the Retry-After: answered at once, and Graph is not called again.
    held = await _teams(client, connected, top="2")
    assert held.status == 429
    assert 43 <= int(held.headers["Retry-After"]) <= 45
    assert len(fake_microsoft.graph_calls_to("/v1.0/teams")) == 1


async def test_cached_answers_and_other_tenants_are_not_slowed(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    assert (await _teams(client, connected, top="1")).status == 200
    fake_microsoft.fail_graph(GraphFailure(status=429, retry_after=45))
    assert (await _teams(client, connected, top="2")).status == 429
    assert (await _teams(client, connected, top="1")).status == 200  # cached: no budget
    assert len(fake_microsoft.graph_calls_to("/v1.0/teams")) == 2

    fake_microsoft.consent(connected.teams.client_id, OTHER_TENANT_ID)
    fake_microsoft.add_teams(OTHER_TENANT_ID, 3)
    await connect_tenant(client, connected, OTHER_TENANT_ID, tenant="globex")
    globex = json.dumps({"collection": "$tenants", "object_id": "globex"})
    response = await _teams(client, connected, tenant=globex, top="2")
    assert response.status == 200
    assert len((await response.json())["ms_teams_teams"]) == 2
