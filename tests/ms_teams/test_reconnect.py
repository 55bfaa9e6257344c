"""TeamsKit: Disconnect, then Connect again from the same page.

useMsTeamsAuth.ts builds its state without a nonce, from the page's user token, tenant,
channel and redirect_url: every Connect on one page sends the same state. A state usable only
once made the second Connect fail (`state_already_used`) until the user token changed. Found by
the browser suite (tests/e2e); the state stays bound to the directory that first used it.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import Popup
from tests.ms_teams.test_oauth import _tenant_data, teamskit_state
from tests.support import World, posted_message, tenant_uri

REFERENCE = "ms_teams_tenant_object[object_id]=acme&ms_teams_tenant_object[collection]=$tenants"


async def test_connect_disconnect_connect_with_the_same_state(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    token = world.user_token(grants={tenant_uri("acme"): {"ms_teams/channels_read": [{}]}})
    state = teamskit_state(world, user_token=token)

    status, page = await popup.consent(admin_consent="True", tenant=TENANT_ID, state=state)
    assert (status, posted_message(page)) == (200, {"type": "authComplete"})
    revoked = await client.put(
        f"/v1/providers/ms-teams/{world.teams.id}/revoke_access?{REFERENCE}"
        f"&channel_id={world.teams.id}",
        headers=world.public_headers(token),
    )
    assert await revoked.json() == "ok"
    assert "ms_teams_tenant_id" not in (await _tenant_data(client, world) or {})

    status, page = await popup.consent(admin_consent="True", tenant=TENANT_ID, state=state)
    assert (status, posted_message(page)) == (200, {"type": "authComplete"})
    assert (await _tenant_data(client, world) or {})["ms_teams_tenant_id"] == TENANT_ID
