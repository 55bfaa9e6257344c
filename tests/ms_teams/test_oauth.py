"""The Entra admin-consent redirect and the sign-in that proves it, driven as a browser would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import ALLOWED_ORIGIN
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import Popup
from tests.support import World, posted_message, tenant_uri


def teamskit_state(world: World, tenant: str = "acme", **overrides: Any) -> str:
    """The state exactly as useMsTeamsAuth.ts builds it: plain JSON, no nonce."""
    state: dict[str, Any] = {
        "redirect_url": f"{ALLOWED_ORIGIN}/settings",
        "ms_teams_tenant_object": {"object_id": tenant, "collection": "$tenants"},
        "channel_id": world.teams.id,
        "public_key": world.public_key,
        "user_token": world.user_token(
            grants={tenant_uri(tenant): {"ms_teams/channels_read": [{}]}}
        ),
    }
    state.update(overrides)
    return json.dumps({k: v for k, v in state.items() if v is not None})


async def _tenant_data(client: TestClient, world: World) -> dict[str, Any] | None:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    return await gateway.channel_data.get(
        environment.id, world.teams.id, Recipient.object("$tenants", "acme")
    )


async def test_consent_stores_the_tenant_id_and_posts_auth_complete(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    await client.put(
        f"/v1/objects/$tenants/acme/channel_data/{world.teams.id}",
        json={
            "data": {
                "connections": [
                    {"ms_teams_team_id": "t1", "ms_teams_channel_id": "19:a@thread.tacv2"}
                ]
            }
        },
        headers=world.secret_headers(),
    )
    status, page = await popup.consent(
        admin_consent="True", tenant=TENANT_ID.upper(), state=teamskit_state(world)
    )
    assert status == 200
    assert posted_message(page) == {"type": "authComplete"}
    assert await _tenant_data(client, world) == {
        "ms_teams_tenant_id": TENANT_ID,
        "connections": [{"ms_teams_team_id": "t1", "ms_teams_channel_id": "19:a@thread.tacv2"}],
    }
    # The admin signed in at that tenant, and the code was redeemed there; then consent was
    # proven with an app token for exactly that tenant before storing.
    assert [(r["tenant"], r["grant_type"]) for r in fake_microsoft.token_requests] == [
        (TENANT_ID, "authorization_code"),
        (TENANT_ID, "client_credentials"),
    ]
    events = await client.app[GATEWAY].audit.recent()
    assert events[0].entry.action == "install"
    assert events[0].entry.details["provider"] == "ms-teams"


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    return [
        (
            "access denied",
            {
                "params": {
                    "error": "access_denied",
                    "admin_consent": "True",
                    "error_description": "AADSTS65004: User declined",
                }
            },
            "access_denied",
        ),
        ("forged state", {"state": '{"channel_id": "x"'}, "invalid_state"),
        ("forged public key", {"overrides": {"public_key": "pk_forged"}}, "invalid_public_key"),
        ("slack channel", {"slack_channel": True}, "unknown_channel"),
        ("other tenant", {"other_tenant": True}, "not_authorized"),
        ("non-guid tenant", {"params": {"tenant": "contoso.onmicrosoft.com"}}, "invalid_tenant"),
        ("no consent flag", {"params": {"admin_consent": "False"}}, "consent_not_granted"),
        (
            "forged tenant",
            {"params": {"tenant": "99999999-0000-4000-8000-000000000000"}},
            "consent_not_verified",
        ),
        (
            "foreign redirect",
            {"overrides": {"redirect_url": "https://evil.example/x"}},
            "invalid_redirect_url",
        ),
    ]


@pytest.mark.parametrize(("case", "setup", "reason"), _cases(), ids=[c[0] for c in _cases()])
async def test_failures_store_nothing_and_post_auth_failed(
    client: TestClient,
    world: World,
    fake_microsoft: FakeMicrosoft,
    popup: Popup,
    case: str,
    setup: dict[str, Any],
    reason: str,
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    overrides = dict(setup.get("overrides", {}))
    if setup.get("slack_channel"):
        overrides["channel_id"] = world.slack.id
    if setup.get("other_tenant"):
        overrides["user_token"] = world.user_token(
            grants={tenant_uri("evil"): {"ms_teams/channels_read": [{}]}}
        )
    params = {
        "admin_consent": "True",
        "tenant": TENANT_ID,
        "state": setup.get("state") or teamskit_state(world, **overrides),
        **setup.get("params", {}),
    }
    status, page = await popup.consent(**params)
    assert status == 400
    assert posted_message(page) == {"type": "authFailed", "reason": reason}
    assert await _tenant_data(client, world) is None


async def test_a_replayed_consent_is_refused(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    state = teamskit_state(world)
    assert (await popup.consent(admin_consent="True", tenant=TENANT_ID, state=state))[0] == 200
    other = "22222222-0000-4000-8000-000000000000"
    fake_microsoft.consent(world.teams.client_id, other)
    status, page = await popup.consent(admin_consent="True", tenant=other, state=state)
    assert status == 400
    assert posted_message(page)["reason"] == "state_already_used"
    assert (await _tenant_data(client, world) or {})["ms_teams_tenant_id"] == TENANT_ID
