"""An Entra app whose Graph application permissions in a tenant lack what TeamsKit lists:
auth_check names them, teams/channels answer a 4xx naming the permission."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock

from provider_gateway.ms_teams.permissions import app_roles
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.support import World

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})
TEAM = "00000000-0000-4000-8000-000000000001"
HOW = (
    "and have an administrator of this tenant consent again. New grants can take several "
    "minutes to reach Microsoft's app tokens, so an answer right after granting may still "
    "show {them} missing."
)


@pytest.fixture
def connect(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft
) -> Callable[..., Awaitable[None]]:
    """Consent the app in the tenant with these application permissions, and connect it."""

    async def connect(*roles: str) -> None:
        fake_microsoft.consent(world.teams.client_id, TENANT_ID)
        fake_microsoft.grant_roles(world.teams.client_id, TENANT_ID, *roles)
        fake_microsoft.add_teams(TENANT_ID, 3)
        fake_microsoft.add_channels(TEAM, 4)
        await connect_tenant(client, world, TENANT_ID)

    return connect


async def _get(client: TestClient, world: World, what: str, **params: str) -> Any:
    return await client.get(
        f"/v1/providers/ms-teams/{world.teams.id}/{what}",
        params={"ms_teams_tenant_object": TENANT, **params},
        headers=world.secret_headers(),
    )


async def test_with_both_permissions_auth_check_is_just_connected(
    client: TestClient, world: World, connect: Any
) -> None:
    await connect("Team.ReadBasic.All", "Channel.ReadBasic.All", "AppCatalog.Read.All")
    response = await _get(client, world, "auth_check")
    assert await response.json() == {"connection": {"ok": True, "ms_teams_tenant_id": TENANT_ID}}


async def test_auth_check_names_a_missing_permission_and_that_grants_take_time(
    client: TestClient, world: World, connect: Any
) -> None:
    await connect("Team.ReadBasic.All")
    response = await _get(client, world, "auth_check")
    assert response.status == 200
    assert await response.json() == {
        "connection": {
            "ok": True,
            "ms_teams_tenant_id": TENANT_ID,
            "missing_permissions": ["Channel.ReadBasic.All"],
            "reason": "The Entra app's application permissions in this tenant lack "
            "Channel.ReadBasic.All, needed to list channels. Add it to the Entra app (API "
            "permissions, Microsoft Graph, Application permissions) " + HOW.format(them="it"),
        }
    }


async def test_without_team_read_auth_check_does_not_probe_graph(
    client: TestClient, world: World, connect: Any, fake_microsoft: FakeMicrosoft
) -> None:
    await connect()
    body = await (await _get(client, world, "auth_check")).json()
    assert body["connection"]["ok"] is True
    assert body["connection"]["missing_permissions"] == [
        "Team.ReadBasic.All",
        "Channel.ReadBasic.All",
    ]
    assert body["connection"]["reason"].startswith(
        "The Entra app's application permissions in this tenant lack Team.ReadBasic.All and "
        "Channel.ReadBasic.All, needed to list teams and channels. Add them "
    )
    assert fake_microsoft.graph_calls == []  # Graph would only refuse for the reason given


async def test_a_higher_privileged_permission_counts(
    client: TestClient, world: World, connect: Any
) -> None:
    await connect("TeamSettings.Read.All", "Group.Read.All")
    body = await (await _get(client, world, "auth_check")).json()
    assert body == {"connection": {"ok": True, "ms_teams_tenant_id": TENANT_ID}}
    assert (await _get(client, world, "channels", team_id=TEAM)).status == 200


async def test_channels_refused_for_the_permission_is_403_naming_it(
    client: TestClient, world: World, connect: Any, fake_microsoft: FakeMicrosoft
) -> None:
    await connect("Team.ReadBasic.All")
    assert (await _get(client, world, "teams")).status == 200
    response = await _get(client, world, "channels", team_id=TEAM)
    assert response.status == 403
    assert await response.json() == {
        "code": "missing_permission",
        "message": "Microsoft Graph refused to list channels: the Entra app lacks the "
        "Channel.ReadBasic.All application permission in this tenant. Add it to the Entra app "
        "(API permissions, Microsoft Graph, Application permissions) " + HOW.format(them="it"),
        "status": 403,
        "type": "invalid_request_error",
        "missing_permissions": ["Channel.ReadBasic.All"],
    }
    refusal = fake_microsoft.graph_calls_to(f"/v1.0/teams/{TEAM}/channels")[-1]
    assert refusal.token is not None


async def test_teams_refused_for_the_permission_is_403_naming_it(
    client: TestClient, world: World, connect: Any
) -> None:
    await connect("Channel.ReadBasic.All")
    response = await _get(client, world, "teams")
    body = await response.json()
    assert response.status == 403
    assert body["code"] == "missing_permission"
    assert body["missing_permissions"] == ["Team.ReadBasic.All"]
    assert body["message"].startswith("Microsoft Graph refused to list teams: the Entra app lacks")


async def test_a_new_grant_is_seen_by_the_next_request(
    client: TestClient, world: World, connect: Any, fake_microsoft: FakeMicrosoft
) -> None:
    """Our cached app token predates the grant: it is dropped, not kept for its hour."""
    await connect("Team.ReadBasic.All")
    assert (await _get(client, world, "channels", team_id=TEAM)).status == 403
    fake_microsoft.grant_roles(
        world.teams.client_id, TENANT_ID, "Team.ReadBasic.All", "Channel.ReadBasic.All"
    )
    assert (await _get(client, world, "channels", team_id=TEAM)).status == 200
    body = await (await _get(client, world, "auth_check")).json()
    assert "missing_permissions" not in body["connection"]


async def test_the_sdk_sees_missing_permissions_on_a_connected_check(
    client: TestClient, world: World, connect: Any
) -> None:
    await connect("Team.ReadBasic.All")
    async with AsyncKnock(
        api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0
    ) as knock:
        checked = await knock.providers.ms_teams.check_auth(
            world.teams.id, ms_teams_tenant_object=TENANT
        )
    assert checked.connection.ok is True
    assert checked.connection.to_dict()["missing_permissions"] == ["Channel.ReadBasic.All"]


def _jwt(payload: object) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{encoded}.c2ln"


@pytest.mark.parametrize(
    ("token", "roles"),
    [
        (_jwt({"roles": ["Team.ReadBasic.All"]}), frozenset({"Team.ReadBasic.All"})),
        (_jwt({"tid": "t"}), frozenset()),  # an app token without roles has no permissions
        (_jwt({"roles": "Team.ReadBasic.All"}), None),
        (_jwt(["not", "claims"]), None),
        ("opaque-token", None),
        ("a.!!!.c", None),
        ("a.bm90IGpzb24.c", None),
    ],
)
def test_roles_are_read_only_from_a_well_formed_token(
    token: str, roles: frozenset[str] | None
) -> None:
    assert app_roles(token) == roles
