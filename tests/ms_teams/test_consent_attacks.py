"""Attacks on the Teams install, performed: each must store nothing (issue 14 items 1 and 5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import CALLBACK, Popup
from tests.ms_teams.test_oauth import teamskit_state
from tests.state_variants import STATE_VARIANTS
from tests.support import World, posted_message, tenant_uri

VICTIM_DIRECTORY = TENANT_ID
ATTACKER_DIRECTORY = "44444444-0000-4000-8000-000000000000"


async def _stored(client: TestClient, world: World, tenant: str) -> dict[str, Any] | None:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    return await gateway.channel_data.get(
        environment.id, world.teams.id, Recipient.object("$tenants", tenant)
    )


async def _consent_redirect(client: TestClient, state: str, directory: str) -> URL:
    response = await client.get(
        CALLBACK,
        params={"admin_consent": "True", "tenant": directory, "state": state},
        allow_redirects=False,
    )
    assert response.status == 302, await response.text()  # nothing stored yet, whoever asks
    return URL(response.headers["Location"])


async def test_a_customer_cannot_connect_another_customers_consented_directory(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    client_id = world.teams.client_id
    fake_microsoft.consent(client_id, VICTIM_DIRECTORY)
    fake_microsoft.consent(client_id, ATTACKER_DIRECTORY)
    fake_microsoft.add_teams(VICTIM_DIRECTORY, 3)
    # The victim (tenant object "acme") connects its directory honestly.
    status, _ = await popup.consent(
        admin_consent="True", tenant=VICTIM_DIRECTORY, state=teamskit_state(world, "acme")
    )
    assert status == 200

    # The attacker: a valid state for its own tenant object "evil", the victim's directory id.
    attacker_token = world.user_token(
        "mallory", grants={tenant_uri("evil"): {"ms_teams/channels_read": [{}]}}
    )
    evil_state = teamskit_state(world, "evil", user_token=attacker_token)

    # 1. Following the sign-in: the attacker's browser is signed in to its own directory.
    fake_microsoft.signin_tenant = ATTACKER_DIRECTORY
    location = await _consent_redirect(client, evil_state, VICTIM_DIRECTORY)
    _, back = await popup.sign_in(str(location))
    status, page = await popup.land(back)
    assert (status, posted_message(page)["reason"]) == (400, "tenant_mismatch")

    # 2. Signing in at its own directory instead, with our state and nonce: a code for the
    # attacker's directory does not redeem at the victim's.
    fake_microsoft.signin_tenant = None
    location = await _consent_redirect(client, evil_state, VICTIM_DIRECTORY)
    swapped = location.with_path(f"/{ATTACKER_DIRECTORY}/oauth2/v2.0/authorize").with_query(
        location.query
    )
    _, back = await popup.sign_in(str(swapped))
    status, page = await popup.land(back)
    assert (status, posted_message(page)["reason"]) == (400, "signin_failed")

    # 3. Skipping the sign-in: a made-up return is no proof either.
    status, page = await popup.land(
        str(client.make_url(CALLBACK).with_query(code="0.Aforged", state=location.query["state"]))
    )
    assert posted_message(page)["reason"] == "invalid_state"  # that state was used by 2.

    assert await _stored(client, world, "evil") is None
    graph_calls = len(fake_microsoft.graph_calls)
    listing = await client.get(
        f"/v1/providers/ms-teams/{world.teams.id}/teams",
        params={
            "ms_teams_tenant_object": json.dumps({"collection": "$tenants", "object_id": "evil"})
        },
        headers=world.public_headers(attacker_token),
    )
    assert listing.status == 403, await listing.text()
    assert (await listing.json())["message"] == "Microsoft Teams tenant ID not set."
    assert len(fake_microsoft.graph_calls) == graph_calls
    assert (await _stored(client, world, "acme") or {})["ms_teams_tenant_id"] == VICTIM_DIRECTORY


@pytest.mark.parametrize("variant", list(STATE_VARIANTS))
async def test_a_used_state_re_encoded_is_refused_for_another_directory(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup, variant: str
) -> None:
    """TeamsKit's state may be used again by the directory that used it (Disconnect, then
    Connect); any spelling of it is refused to every other directory."""
    fake_microsoft.consent(world.teams.client_id, VICTIM_DIRECTORY)
    fake_microsoft.consent(world.teams.client_id, ATTACKER_DIRECTORY)
    state = teamskit_state(world)
    status, _ = await popup.consent(admin_consent="True", tenant=VICTIM_DIRECTORY, state=state)
    assert status == 200
    requests = len(fake_microsoft.token_requests)

    status, page = await popup.consent(
        admin_consent="True", tenant=ATTACKER_DIRECTORY, state=STATE_VARIANTS[variant](state)
    )
    assert status == 400
    # The verifier refuses a non-canonical JWT before the state is claimed.
    expected = "invalid_user_token" if variant == "re-encoded user token" else "state_already_used"
    assert posted_message(page) == {"type": "authFailed", "reason": expected}
    assert len(fake_microsoft.token_requests) == requests
    assert (await _stored(client, world, "acme") or {})["ms_teams_tenant_id"] == VICTIM_DIRECTORY
