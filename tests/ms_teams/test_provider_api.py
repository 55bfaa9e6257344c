"""Teams auth_check, teams, channels and revoke_access through knockapi and raw HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock, PermissionDeniedError, UnprocessableEntityError

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft, GraphFailure
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.support import World, tenant_uri

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})
TEAM = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
async def knock(client: TestClient, world: World) -> AsyncIterator[AsyncKnock]:
    async with AsyncKnock(
        api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0
    ) as sdk:
        yield sdk


@pytest.fixture
async def connected(client: TestClient, world: World, fake_microsoft: FakeMicrosoft) -> World:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    fake_microsoft.add_teams(TENANT_ID, 5)
    fake_microsoft.add_channels(TEAM, 6)
    await connect_tenant(client, world, TENANT_ID)
    return world


async def test_sdk_auto_paginates_250_teams_with_top_100(
    connected: World, fake_microsoft: FakeMicrosoft, knock: AsyncKnock
) -> None:
    fake_microsoft.add_teams(TENANT_ID, 250)
    seen = [
        team.id
        async for team in knock.providers.ms_teams.list_teams(
            connected.teams.id, ms_teams_tenant_object=TENANT, query_options={"top": 100}
        )
    ]
    assert len(seen) == 250
    assert len(set(seen)) == 250
    calls = fake_microsoft.graph_calls_to("/v1.0/teams")
    assert [call.query.get("$top") for call in calls] == ["100", "100", "100"]
    assert calls[0].query.get("$skiptoken") is None
    # The opaque token (with + / = and a quote) went back exactly as Graph issued it.
    assert all(call.query["$skiptoken"].startswith("RFNwdA+/") for call in calls[1:])


async def test_filter_and_select_reach_graph_byte_for_byte(
    connected: World, fake_microsoft: FakeMicrosoft, knock: AsyncKnock
) -> None:
    odata_filter = "displayName eq 'Team 0002'"
    page = await knock.providers.ms_teams.list_teams(
        connected.teams.id,
        ms_teams_tenant_object=TENANT,
        query_options={"filter": odata_filter, "select": "id,displayName"},
    )
    call = fake_microsoft.graph_calls_to("/v1.0/teams")[-1]
    assert call.query["$filter"] == odata_filter
    assert call.query["$select"] == "id,displayName"
    assert [team.display_name for team in page.ms_teams_teams] == ["Team 0002"]
    assert page.skip_token is None

    channels = await knock.providers.ms_teams.list_channels(
        connected.teams.id,
        ms_teams_tenant_object=TENANT,
        team_id=TEAM,
        query_options={
            "filter": "startswith(displayName,'Chan')",
            "select": "id,displayName,membershipType",
        },
    )
    call = fake_microsoft.graph_calls_to(f"/v1.0/teams/{TEAM}/channels")[-1]
    assert call.query == {
        "$filter": "startswith(displayName,'Chan')",
        "$select": "id,displayName,membershipType",
    }
    assert [c.display_name for c in channels.ms_teams_channels] == [
        f"Channel {i}" for i in range(1, 6)
    ]


async def test_channels_reply_shape(client: TestClient, connected: World) -> None:
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/channels",
        params={"ms_teams_tenant_object": TENANT, "team_id": TEAM},
        headers=connected.secret_headers(),
    )
    body = await response.json()
    assert body["ms_teams_channels"][0] == {
        "id": "19:channel0@thread.tacv2",
        "displayName": "General",
        "description": None,
        "createdDateTime": "2026-01-02T00:00:00Z",
        "isArchived": False,
        "membershipType": "standard",
    }


async def test_channels_without_team_id_is_422(client: TestClient, connected: World) -> None:
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/channels",
        params={"ms_teams_tenant_object": TENANT},
        headers=connected.secret_headers(),
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "team_id"


async def test_check_auth_and_revoke_with_the_sdk(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft, knock: AsyncKnock
) -> None:
    checked = await knock.providers.ms_teams.check_auth(
        connected.teams.id, ms_teams_tenant_object=TENANT
    )
    assert checked.connection.ok is True
    assert checked.connection.ms_teams_tenant_id == TENANT_ID

    revoked = await knock.providers.ms_teams.revoke_access(
        connected.teams.id, ms_teams_tenant_object=TENANT
    )
    assert revoked.ok == "ok"
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(connected.environment_name)
    assert environment is not None
    stored = await gateway.channel_data.get(
        environment.id, connected.teams.id, Recipient.object("$tenants", "acme")
    )
    assert stored == {"connections": []}

    with pytest.raises(PermissionDeniedError) as raised:
        await knock.providers.ms_teams.check_auth(connected.teams.id, ms_teams_tenant_object=TENANT)
    assert raised.value.body == {
        "code": "authorization",
        "message": "Microsoft Teams tenant ID not set.",
        "status": 403,
        "type": "authentication_error",
    }


async def test_an_unconsented_tenant_reads_as_not_ok_with_the_aadsts_code(
    client: TestClient, world: World
) -> None:
    await connect_tenant(client, world, TENANT_ID)  # stored, but never consented at Entra
    response = await client.get(
        f"/v1/providers/ms-teams/{world.teams.id}/auth_check",
        params={"ms_teams_tenant_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 200
    assert (await response.json())["connection"] == {
        "ok": False,
        "reason": "AADSTS7000229",
        "ms_teams_tenant_id": TENANT_ID,
    }
    teams = await client.get(
        f"/v1/providers/ms-teams/{world.teams.id}/teams",
        params={"ms_teams_tenant_object": TENANT},
        headers=world.secret_headers(),
    )
    assert teams.status == 403
    assert "AADSTS7000229" in (await teams.json())["message"]


async def test_the_js_clients_bracket_wire_form(client: TestClient, connected: World) -> None:
    token = connected.user_token(grants={tenant_uri("acme"): {"ms_teams/channels_read": [{}]}})
    headers = connected.public_headers(token)
    reference = "ms_teams_tenant_object[object_id]=acme&ms_teams_tenant_object[collection]=$tenants"
    base = f"/v1/providers/ms-teams/{connected.teams.id}"
    checked = await client.get(
        f"{base}/auth_check?{reference}&channel_id={connected.teams.id}", headers=headers
    )
    assert (await checked.json())["connection"]["ok"] is True
    teams = await client.get(f"{base}/teams?{reference}&query_options[$top]=2", headers=headers)
    body = await teams.json()
    assert len(body["ms_teams_teams"]) == 2
    assert body["skip_token"] is not None
    # Page 2 as the SDKs send it: bracket keys of page 1 plus the dotted skiptoken, which wins.
    skip_token = quote(body["skip_token"], safe="")
    second = await client.get(
        f"{base}/teams?{reference}&query_options[$top]=2&query_options[$skiptoken]=stale"
        f"&query_options.$skiptoken={skip_token}",
        headers=headers,
    )
    assert second.status == 200, await second.text()
    assert [team["displayName"] for team in (await second.json())["ms_teams_teams"]] == [
        "Team 0002",
        "Team 0003",
    ]
    channels = await client.get(
        f"{base}/channels?{reference}&team_id={TEAM}&query_options[$select]=id", headers=headers
    )
    assert channels.status == 200
    revoked = await client.put(
        f"{base}/revoke_access?{reference}&channel_id={connected.teams.id}", headers=headers
    )
    assert await revoked.json() == "ok"


async def test_public_key_needs_the_teams_grant(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    token = connected.user_token(grants={tenant_uri("acme"): {"slack/channels_read": [{}]}})
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/teams",
        params={"ms_teams_tenant_object": TENANT},
        headers=connected.public_headers(token),
    )
    assert response.status == 403
    assert fake_microsoft.token_requests == []


async def test_fifty_concurrent_cold_requests_fetch_one_token(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.token_delay = 0.3
    responses = await asyncio.gather(
        *(
            client.get(
                f"/v1/providers/ms-teams/{connected.teams.id}/teams",
                params={"ms_teams_tenant_object": TENANT},
                headers=connected.secret_headers(),
            )
            for _ in range(50)
        )
    )
    assert [response.status for response in responses] == [200] * 50
    assert len(fake_microsoft.token_requests) == 1
    assert fake_microsoft.token_requests[0]["tenant"] == TENANT_ID
    assert fake_microsoft.token_requests[0]["scope"] == f"{fake_microsoft.graph_url}/.default"


async def test_the_event_loop_keeps_serving_while_msal_waits(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.token_delay = 1.5
    slow = asyncio.ensure_future(
        client.get(
            f"/v1/providers/ms-teams/{connected.teams.id}/teams",
            params={"ms_teams_tenant_object": TENANT},
            headers=connected.secret_headers(),
        )
    )
    await asyncio.sleep(0.2)  # msal is now blocked on the token endpoint, in its thread
    for _ in range(5):
        health = await client.get("/healthz")
        assert health.status == 200
        assert not slow.done()  # answered while the token request is still in flight
    assert (await slow).status == 200


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (GraphFailure(status=429, retry_after=45), 429, "rate_limited"),
        (GraphFailure(status=503, retry_after=45), 502, "upstream_error"),
        (GraphFailure(status=504, retry_after=45), 504, "upstream_timeout"),
        (GraphFailure(status=200, delay=4.0), 504, "upstream_timeout"),
    ],
)
async def test_graph_throttling_and_failures_are_clean_errors(
    client: TestClient,
    connected: World,
    fake_microsoft: FakeMicrosoft,
    failure: GraphFailure,
    status: int,
    code: str,
) -> None:
    fake_microsoft.fail_graph(failure)
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/teams",
        params={"ms_teams_tenant_object": TENANT},
        headers=connected.secret_headers(),
    )
    assert response.status == status
    body: dict[str, Any] = await response.json()
    assert body["code"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "45"


async def test_a_short_graph_retry_after_is_waited_out(
    client: TestClient, connected: World, fake_microsoft: FakeMicrosoft
) -> None:
    fake_microsoft.fail_graph(GraphFailure(status=429, retry_after=1))
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/teams",
        params={"ms_teams_tenant_object": TENANT},
        headers=connected.secret_headers(),
    )
    assert response.status == 200
    assert len(fake_microsoft.graph_calls_to("/v1.0/teams")) == 2


async def test_unknown_team_is_404_and_bad_filter_is_422(
    client: TestClient, connected: World, knock: AsyncKnock
) -> None:
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/channels",
        params={
            "ms_teams_tenant_object": TENANT,
            "team_id": "00000000-0000-4000-8000-0000000000ff",
        },
        headers=connected.secret_headers(),
    )
    assert response.status == 404
    with pytest.raises(UnprocessableEntityError):
        await knock.providers.ms_teams.list_teams(
            connected.teams.id, ms_teams_tenant_object=TENANT, query_options={"filter": "bogus("}
        )


async def test_graph_tls_trusts_gateway_ca_bundle_despite_requests_ca_bundle(
    client: TestClient, connected: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """requests would let REQUESTS_CA_BUNDLE override msal's verify; the gateway must not."""
    import trustme

    wrong = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(wrong))
    response = await client.get(
        f"/v1/providers/ms-teams/{connected.teams.id}/auth_check",
        params={"ms_teams_tenant_object": TENANT},
        headers=connected.secret_headers(),
    )
    assert (await response.json())["connection"]["ok"] is True
