"""Teams channels: Knock's default view leaves out archived and private channels.

TeamsKit's MsTeamsChannelCombobox asks for a team's channels with no query options and offers
every channel it gets; Knock's API documents that "by default, archived and private channels
are excluded" (the bot can post to neither). Found by the browser suite (tests/e2e).
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.support import World, tenant_uri

TEAM = "00000000-0000-4000-8000-000000000001"
REFERENCE = "ms_teams_tenant_object[object_id]=acme&ms_teams_tenant_object[collection]=$tenants"


async def _channel_names(client: TestClient, world: World, options: str = "") -> list[str]:
    token = world.user_token(grants={tenant_uri("acme"): {"ms_teams/channels_read": [{}]}})
    response = await client.get(
        f"/v1/providers/ms-teams/{world.teams.id}/channels?{REFERENCE}&team_id={TEAM}{options}",
        headers=world.public_headers(token),
    )
    assert response.status == 200, await response.text()
    return [channel["displayName"] for channel in (await response.json())["ms_teams_channels"]]


async def test_channels_without_a_filter_leave_out_archived_and_private_channels(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.add_channels(TEAM, 6)  # #3 is private, #4 archived
    await connect_tenant(client, world, TENANT_ID)

    assert await _channel_names(client, world) == ["General", "Channel 1", "Channel 2", "Channel 5"]
    # Graph was asked for the team's channels as TeamsKit asked: nothing added, nothing lost.
    assert fake_microsoft.graph_calls_to(f"/v1.0/teams/{TEAM}/channels")[-1].query == {}


async def test_a_callers_filter_replaces_the_default_view(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.add_channels(TEAM, 6)
    await connect_tenant(client, world, TENANT_ID)

    names = await _channel_names(
        client, world, "&query_options[$filter]=startswith(displayName,'Chan')"
    )
    assert names == [f"Channel {i}" for i in range(1, 6)]
