"""auth_check, channels and revoke_access, through the knockapi SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock, PermissionDeniedError

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import Failure, FakeSlack
from tests.slack.conftest import TEAM
from tests.slack.support import install_token
from tests.support import World, tenant_uri

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


@pytest.fixture
async def knock(client: TestClient, world: World) -> AsyncIterator[AsyncKnock]:
    async with AsyncKnock(
        api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0
    ) as sdk:
        yield sdk


async def _stored(client: TestClient, world: World, tenant: str = "acme") -> dict[str, Any] | None:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    return await gateway.channel_data.get(
        environment.id, world.slack.id, Recipient.object("$tenants", tenant)
    )


async def test_sdk_auto_paginates_every_channel_exactly_once(
    client: TestClient, world: World, fake_slack: FakeSlack, knock: AsyncKnock
) -> None:
    fake_slack.add_workspace(TEAM, 1050)
    await install_token(client, world, fake_slack.mint_token(TEAM))
    seen = [
        channel.id
        async for channel in knock.providers.slack.list_channels(
            world.slack.id, access_token_object=TENANT, query_options={"limit": 300}
        )
    ]
    assert len(seen) == 1050
    assert len(set(seen)) == 1050
    calls = fake_slack.calls_to("conversations.list")
    assert len(calls) == 4  # within the workspace's burst: paging at its pace is test_pacing's
    assert all(call.params["limit"] == "300" for call in calls)
    assert calls[0].params.get("cursor") is None
    assert all(call.params.get("cursor") for call in calls[1:])


async def test_listing_defaults_reach_slack(
    client: TestClient, world: World, fake_slack: FakeSlack, knock: AsyncKnock
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    page = await knock.providers.slack.list_channels(world.slack.id, access_token_object=TENANT)
    params = fake_slack.calls_to("conversations.list")[0].params
    assert params["limit"] == "200"
    assert params["types"] == "public_channel,private_channel"
    assert params["exclude_archived"] in {"1", "true"}
    assert page.next_cursor is None
    first = page.slack_channels[0]
    assert (first.id, first.context_team_id, first.is_im) == (f"C{TEAM}00000", TEAM, False)


async def test_check_auth_and_revoke_with_the_sdk(
    client: TestClient, world: World, fake_slack: FakeSlack, knock: AsyncKnock
) -> None:
    token = fake_slack.mint_token(TEAM)
    await install_token(client, world, token)
    checked = await knock.providers.slack.check_auth(world.slack.id, access_token_object=TENANT)
    assert checked.connection.ok is True

    revoked = await knock.providers.slack.revoke_access(world.slack.id, access_token_object=TENANT)
    assert revoked.ok == "ok"
    assert [call.token for call in fake_slack.calls_to("auth.revoke")] == [token]
    assert await _stored(client, world) == {"connections": [{"channel_id": "C1"}]}

    with pytest.raises(PermissionDeniedError) as raised:
        await knock.providers.slack.check_auth(world.slack.id, access_token_object=TENANT)
    assert raised.value.body == {
        "code": "authorization",
        "message": "Access token not set.",
        "status": 403,
        "type": "authentication_error",
    }
    with pytest.raises(PermissionDeniedError):
        await knock.providers.slack.revoke_access(world.slack.id, access_token_object=TENANT)


async def test_a_token_slack_rejects_is_reported_not_raised(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    token = fake_slack.mint_token(TEAM)
    await install_token(client, world, token)
    fake_slack.revoke(token)
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 200
    assert await response.json() == {
        "connection": {"ok": False, "reason": "token_revoked", "error": "token_revoked"}
    }
    listing = await client.get(
        f"/v1/providers/slack/{world.slack.id}/channels",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert listing.status == 403
    assert "token_revoked" in (await listing.json())["message"]


async def test_the_js_clients_bracket_wire_form(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    """As @knocklabs/client sends it: bracket keys, channel_id, a pk_ key and a user token."""
    await install_token(client, world, fake_slack.mint_token(TEAM))
    token = world.user_token(grants={tenant_uri("acme"): {"slack/channels_read": [{}]}})
    headers = {**world.public_headers(token), "X-Knock-Client": "Knock/ClientJS 0.22.1"}
    reference = (
        "access_token_object[object_id]=acme&access_token_object[collection]=$tenants"
        f"&channel_id={world.slack.id}"
    )
    base = f"/v1/providers/slack/{world.slack.id}"
    checked = await client.get(f"{base}/auth_check?{reference}", headers=headers)
    assert await checked.json() == {"connection": {"ok": True}}

    first = await client.get(
        f"{base}/channels?{reference}&query_options[limit]=10"
        "&query_options[types]=public_channel&query_options[exclude_archived]=false",
        headers=headers,
    )
    body = await first.json()
    assert len(body["slack_channels"]) == 10
    assert all(not channel["is_private"] for channel in body["slack_channels"])
    assert "xoxb" not in await first.text()
    # Page 2 as the SDKs send it: the first page's bracket keys plus a dotted cursor.
    second = await client.get(
        f"{base}/channels?{reference}&query_options[limit]=10&query_options[cursor]=stale"
        f"&query_options.cursor={body['next_cursor']}&query_options[types]=public_channel",
        headers=headers,
    )
    assert second.status == 200, await second.text()
    assert fake_slack.calls_to("conversations.list")[-1].params["cursor"] == body["next_cursor"]

    revoked = await client.put(f"{base}/revoke_access?{reference}", headers=headers)
    assert await revoked.json() == "ok"  # SlackKit compares the body to "ok"


async def test_public_key_needs_the_slack_grant_on_that_tenant(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    for user, grants in (
        ("user-1", {tenant_uri("other"): {"slack/channels_read": [{}]}}),
        # Another user: six provider calls from one would exceed its tier-2 burst of five.
        ("user-2", {tenant_uri("acme"): {"ms_teams/channels_read": [{}]}}),
    ):
        headers = world.public_headers(world.user_token(sub=user, grants=grants))
        for method, action in (
            ("GET", "auth_check"),
            ("GET", "channels"),
            ("PUT", "revoke_access"),
        ):
            response = await client.request(
                method,
                f"/v1/providers/slack/{world.slack.id}/{action}",
                params={"access_token_object": TENANT},
                headers=headers,
            )
            assert response.status == 403, (grants, action)
    assert fake_slack.calls == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "access_token_object.collection"),
        ({"access_token_object": "{not json"}, "access_token_object"),
        ({"access_token_object": '{"collection": "$tenants"}'}, "access_token_object.object_id"),
        ({"access_token_object": TENANT, "query_options[limit]": "0"}, "query_options.limit"),
        ({"access_token_object": TENANT, "query_options.limit": "1001"}, "query_options.limit"),
        ({"access_token_object": TENANT, "query_options[limit]": "many"}, "query_options.limit"),
        ({"access_token_object": TENANT, "query_options[types]": "dm"}, "query_options.types"),
        (
            {"access_token_object": TENANT, "query_options[exclude_archived]": "maybe"},
            "query_options.exclude_archived",
        ),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    client: TestClient, world: World, fake_slack: FakeSlack, query: dict[str, str], field: str
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/channels",
        params=query,
        headers=world.secret_headers(),
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == field
    assert fake_slack.calls_to("conversations.list") == []


async def test_a_teams_channel_id_is_not_a_slack_channel(client: TestClient, world: World) -> None:
    response = await client.get(
        f"/v1/providers/slack/{world.teams.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 404
    assert (await response.json())["code"] == "resource_missing"


async def test_a_short_retry_after_is_waited_out(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    fake_slack.fail_next("conversations.list", Failure(status=429, retry_after=1))
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/channels",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 200
    assert len(fake_slack.calls_to("conversations.list")) == 2


async def test_a_long_retry_after_is_passed_to_the_caller(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    fake_slack.fail_next("conversations.list", Failure(status=429, retry_after=30))
    started = time.monotonic()
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/channels",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert time.monotonic() - started < 5  # never held for the whole wait
    assert response.status == 429
    assert response.headers["Retry-After"] == "30"
    assert (await response.json())["code"] == "rate_limited"


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (Failure(status=500), 502, "upstream_error"),
        (Failure(status=503), 502, "upstream_error"),
        (Failure(status=200, delay=3.0), 504, "upstream_timeout"),
    ],
)
async def test_upstream_failures_are_clean_errors(
    client: TestClient,
    world: World,
    fake_slack: FakeSlack,
    failure: Failure,
    status: int,
    code: str,
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    fake_slack.fail_next("auth.test", failure)
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == status
    body = await response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "status", "type"}


async def test_an_unreachable_slack_is_a_502_and_revoke_keeps_the_token(
    aiohttp_client: Any, make_settings: Any, unused_tcp_port: int
) -> None:
    from provider_gateway.app import create_app
    from tests.support import seed_world, serve

    settings = make_settings(SLACK_API_URL=f"http://127.0.0.1:{unused_tcp_port}/api/")
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    await install_token(client, world, "xoxb-unreachable")
    response = await client.put(
        f"/v1/providers/slack/{world.slack.id}/revoke_access",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 502
    stored = await _stored(client, world)
    assert stored is not None
    assert stored["token"]["access_token"] == "xoxb-unreachable"


async def test_twenty_concurrent_calls_on_an_expiring_token_refresh_once(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.refresh_delay = 0.2  # keep the first refresh in flight while the rest arrive
    token = fake_slack.mint_token(TEAM, expires_in=60)
    refresh = fake_slack.mint_refresh_token(token)
    await install_token(
        client, world, token, refresh_token=refresh, expires_at=int(time.time()) + 60, team_id=TEAM
    )
    responses = await asyncio.gather(
        *(
            client.get(
                f"/v1/providers/slack/{world.slack.id}/channels",
                params={"access_token_object": TENANT},
                headers=world.secret_headers(),
            )
            for _ in range(20)
        )
    )
    assert [response.status for response in responses] == [200] * 20
    refreshes = [
        call for call in fake_slack.calls_to("oauth.v2.access") if call.params.get("grant_type")
    ]
    assert len(refreshes) == 1
    assert refreshes[0].params["refresh_token"] == refresh
    stored = await _stored(client, world)
    assert stored is not None
    assert stored["token"]["access_token"] != token
    assert stored["token"]["expires_at"] > time.time() + 3600
    used = {call.token for call in fake_slack.calls_to("conversations.list")}
    assert used == {stored["token"]["access_token"]}


async def test_a_dead_refresh_token_reads_as_disconnected(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    token = fake_slack.mint_token(TEAM, expires_in=10)
    await install_token(
        client, world, token, refresh_token="xoxe-1-unknown", expires_at=int(time.time()) + 10
    )
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert await response.json() == {
        "connection": {
            "ok": False,
            "reason": "invalid_refresh_token",
            "error": "invalid_refresh_token",
        }
    }
