"""Values that go into a Graph URL path are validated and encoded: no climbing out of them."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.support import World

REFERENCE = {"ms_teams_tenant_object": '{"collection": "$tenants", "object_id": "acme"}'}
TEAM = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
async def connected(client: TestClient, world: World, fake_microsoft: FakeMicrosoft) -> World:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.add_channels(TEAM, 2)
    await connect_tenant(client, world, TENANT_ID)
    return world


@pytest.mark.parametrize(
    "team_id",
    [
        "../users?x=",
        "../../users",
        f"{TEAM}/../../users",
        f"{TEAM}/channels?$filter=x#",
        "..",
        "%2e%2e%2fusers",
        "x" * 300,
    ],
)
async def test_a_team_id_meant_for_another_graph_path_is_refused(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft, team_id: str
) -> None:
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/channels",
        params={**REFERENCE, "team_id": team_id},
        headers=connected.secret_headers(),
    )
    assert response.status == 422
    body = await response.json()
    assert body["code"] == "invalid_params"
    assert body["errors"][0]["field"] == "team_id"
    assert not [path for path in fake_microsoft.graph_paths if "/channels" in path]
    assert not [path for path in fake_microsoft.graph_paths if "users" in path]


async def test_a_team_id_in_any_guid_spelling_reaches_its_own_path(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/channels",
        params={**REFERENCE, "team_id": "{" + TEAM.upper() + "}"},
        headers=connected.secret_headers(),
    )
    assert response.status == 200, await response.text()
    assert fake_microsoft.graph_paths[-1] == f"/v1.0/teams/{TEAM}/channels"
