"""The sign-in hop that proves which directory consented (CONTRACT §4), hop by hop."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from provider_gateway.app import create_app
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import ALLOWED_ORIGIN
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import CALLBACK, Popup
from tests.ms_teams.test_oauth import _tenant_data, teamskit_state
from tests.support import World, posted_message, seed_world, serve

OTHER_DIRECTORY = "33333333-0000-4000-8000-000000000000"


async def _first_hop(client: TestClient, world: World, tenant: str = TENANT_ID) -> URL:
    response = await client.get(
        CALLBACK,
        params={"admin_consent": "True", "tenant": tenant, "state": teamskit_state(world)},
        allow_redirects=False,
    )
    assert response.status == 302, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    return URL(response.headers["Location"])


def _grants(fake: FakeMicrosoft) -> list[str]:
    return [request["grant_type"] for request in fake.token_requests]


async def test_the_consent_redirect_sends_the_popup_to_the_sign_in_and_stores_nothing(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    location = await _first_hop(client, world)

    assert str(location.with_query(None)) == (
        f"{fake_microsoft.login_url}/{TENANT_ID}/oauth2/v2.0/authorize"
    )
    query = location.query
    assert set(query) == {
        "client_id",
        "response_type",
        "scope",
        "redirect_uri",
        "response_mode",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
    assert query["client_id"] == world.teams.client_id
    assert (query["response_type"], query["scope"], query["response_mode"]) == (
        "code",
        "openid",
        "query",
    )
    # No public URL configured: the callback URL the consent redirect arrived at.
    assert query["redirect_uri"] == str(client.make_url(CALLBACK))
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) == 43
    assert len(query["nonce"]) >= 32
    assert query["state"] != query["nonce"]
    # Nothing stored, and not even an app token fetched: the first hop is no oracle telling a
    # caller whether some directory consented to this app.
    assert await _tenant_data(client, world) is None
    assert fake_microsoft.token_requests == []


async def test_the_sign_in_code_is_redeemed_with_its_redirect_uri_nonce_and_verifier(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    location = await _first_hop(client, world)
    status, back = await popup.sign_in(str(location))
    assert status == 302
    assert URL(back).query["state"] == location.query["state"]

    status, page = await popup.land(back)
    assert (status, posted_message(page)) == (200, {"type": "authComplete"})
    redemption = fake_microsoft.token_requests[0]
    assert redemption["grant_type"] == "authorization_code"
    assert redemption["code"] == URL(back).query["code"]
    assert redemption["redirect_uri"] == location.query["redirect_uri"]
    assert redemption["client_secret"] == world.teams.client_secret.reveal()
    assert "offline_access" not in redemption["scope"].split()  # no refresh token wanted
    assert "openid" in redemption["scope"].split()
    assert redemption["code_verifier"]  # the fake checked it against the challenge
    assert fake_microsoft.signin_requests[0]["nonce"] == location.query["nonce"]


async def test_a_public_url_is_the_redirect_uri_of_the_sign_in(
    make_settings: Any, fake_microsoft: FakeMicrosoft, ca_bundle: Any, aiohttp_client: Any
) -> None:
    settings = make_settings(
        MS_LOGIN_URL=fake_microsoft.login_url,
        MS_GRAPH_URL=fake_microsoft.graph_url,
        GATEWAY_CA_BUNDLE=str(ca_bundle),
        GATEWAY_PUBLIC_URL="https://gateway.example.com",
    )
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    location = await _first_hop(client, world)
    assert location.query["redirect_uri"] == (
        "https://gateway.example.com/providers/ms-teams/authenticate"
    )


async def test_a_sign_in_state_finishes_one_install_only(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    location = await _first_hop(client, world)
    _, back = await popup.sign_in(str(location))
    assert (await popup.land(back))[0] == 200

    status, page = await popup.land(back)  # the same redirect again
    assert (status, posted_message(page)) == (
        400,
        {"type": "authFailed", "reason": "invalid_state"},
    )
    # A fresh code with the used state is refused too, before any redemption.
    fresh = URL(back).update_query(code="0.Aforged")
    status, page = await popup.land(str(fresh))
    assert posted_message(page)["reason"] == "invalid_state"
    assert _grants(fake_microsoft) == ["authorization_code", "client_credentials"]


@pytest.mark.parametrize(
    "state",
    ["A" * 43, "not-ours", "", '{"channel_id": "x"}'],
    ids=["forged", "short", "empty", "json"],
)
async def test_a_forged_sign_in_state_stores_nothing(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup, state: str
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    status, page = await popup.land(
        str(client.make_url(CALLBACK).with_query(code="0.Ax", state=state))
    )
    assert status == 400
    assert posted_message(page)["reason"] == "invalid_state"
    assert fake_microsoft.token_requests == []
    assert await _tenant_data(client, world) is None


async def test_a_code_for_another_directory_is_a_tenant_mismatch(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.signin_tenant = OTHER_DIRECTORY  # the signed-in user is from elsewhere
    status, page = await popup.consent(
        admin_consent="True", tenant=TENANT_ID, state=teamskit_state(world)
    )
    assert (status, posted_message(page)) == (
        400,
        {"type": "authFailed", "reason": "tenant_mismatch"},
    )
    assert await _tenant_data(client, world) is None
    assert _grants(fake_microsoft) == ["authorization_code"]  # no app token either


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nonce": "another-sign-in"}, "invalid_id_token"),
        ({"aud": "00000000-0000-4000-8000-00000000beef"}, "invalid_id_token"),
        ({"exp": int(time.time()) - 3600}, "invalid_id_token"),
        ({"iss": "https://login.example.test/common/v2.0"}, "invalid_id_token"),
        ({"tid": "not-a-guid"}, "tenant_mismatch"),
    ],
    ids=["nonce", "aud", "expired", "iss", "tid"],
)
async def test_an_id_token_not_from_this_sign_in_stores_nothing(
    client: TestClient,
    world: World,
    fake_microsoft: FakeMicrosoft,
    popup: Popup,
    claims: dict[str, Any],
    reason: str,
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.id_token_claims = claims
    status, page = await popup.consent(
        admin_consent="True", tenant=TENANT_ID, state=teamskit_state(world)
    )
    assert (status, posted_message(page)) == (400, {"type": "authFailed", "reason": reason})
    assert await _tenant_data(client, world) is None
    assert _grants(fake_microsoft) == ["authorization_code"]


async def test_entra_refusing_the_sign_in_fails_with_the_apps_redirect_url(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.signin_error = {
        "error": "access_denied",
        "error_description": "AADSTS50105: The signed in user is not assigned to a role.",
    }
    redirect_url = f"{ALLOWED_ORIGIN}/settings/teams"
    status, page = await popup.consent(
        admin_consent="True",
        tenant=TENANT_ID,
        state=teamskit_state(world, redirect_url=redirect_url),
    )
    assert (status, posted_message(page)) == (
        400,
        {"type": "authFailed", "reason": "signin_failed"},
    )
    assert f'var redirect = "{redirect_url}"' in page  # TeamsKit's, from the first hop
    assert fake_microsoft.token_requests == []
    assert await _tenant_data(client, world) is None


async def test_a_code_entra_refuses_is_a_failed_sign_in(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    location = await _first_hop(client, world)
    _, back = await popup.sign_in(str(location))
    status, page = await popup.land(str(URL(back).update_query(code="0.Atampered")))
    assert (status, posted_message(page)) == (
        400,
        {"type": "authFailed", "reason": "signin_failed"},
    )
    assert _grants(fake_microsoft) == ["authorization_code"]
    assert await _tenant_data(client, world) is None
