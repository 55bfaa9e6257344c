"""The channel data API, driven by the official knockapi SDK and by raw HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock, NotFoundError, UnprocessableEntityError

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.support import World, object_uri, tenant_uri

TENANT_ID = "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d"


@pytest.fixture
async def knock(client: TestClient, world: World) -> AsyncIterator[AsyncKnock]:
    sdk = AsyncKnock(api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0)
    async with sdk:
        yield sdk


async def test_sdk_object_channel_data_round_trip(knock: AsyncKnock, world: World) -> None:
    data = {
        "connections": [
            {"channel_id": "C123"},
            {"incoming_webhook": {"url": "https://hooks.slack.com/x"}},
        ]
    }
    stored = await knock.objects.set_channel_data("projects", "p1", world.slack.id, data=data)
    assert stored.channel_id == world.slack.id
    assert stored.data.to_dict()["connections"] == data["connections"]  # type: ignore[union-attr]

    fetched = await knock.objects.get_channel_data("projects", "p1", world.slack.id)
    assert fetched.data.to_dict()["connections"] == data["connections"]  # type: ignore[union-attr]

    await knock.objects.unset_channel_data("projects", "p1", world.slack.id)
    with pytest.raises(NotFoundError):
        await knock.objects.get_channel_data("projects", "p1", world.slack.id)
    # Unsetting again is not an error: a retried DELETE must not fail.
    await knock.objects.unset_channel_data("projects", "p1", world.slack.id)


async def test_sdk_tenant_token_and_user_channel_data(knock: AsyncKnock, world: World) -> None:
    await knock.objects.set_channel_data(
        "$tenants",
        "acme",
        world.slack.id,
        data={"token": {"access_token": "xoxb-abc"}, "connections": []},
    )
    fetched = await knock.objects.get_channel_data("$tenants", "acme", world.slack.id)
    assert fetched.data.to_dict()["token"] == {"access_token": "xoxb-abc"}  # type: ignore[union-attr]

    teams = {"ms_teams_tenant_id": TENANT_ID, "connections": [{"ms_teams_user_id": "u-guid"}]}
    stored = await knock.users.set_channel_data("user-1", world.teams.id, data=teams)
    assert stored.data.to_dict() == teams  # type: ignore[union-attr]


async def test_sdk_gets_404_for_unknown_channel(knock: AsyncKnock) -> None:
    with pytest.raises(NotFoundError):
        await knock.objects.get_channel_data(
            "projects", "p1", "3d6b2f1c-1111-4a6b-9c1d-2e3f4a5b6c7d"
        )


async def test_sdk_gets_422_naming_the_field(knock: AsyncKnock, world: World) -> None:
    with pytest.raises(UnprocessableEntityError) as raised:
        await knock.objects.set_channel_data(
            "projects",
            "p1",
            world.slack.id,
            data={"connections": [{"channel_id": 42}]},  # type: ignore[list-item]
        )
    body: Any = raised.value.body
    assert body["code"] == "invalid_params"
    assert body["errors"][0]["field"] == "data.connections[0].channel_id"


@pytest.mark.parametrize(
    ("channel", "data", "field"),
    [
        ("slack", {"connections": "C1"}, "data.connections"),
        ("slack", {"connections": [{}]}, "data.connections[0]"),
        ("slack", {"token": {"access_token": 5}}, "data.token.access_token"),
        ("slack", {"ms_teams_tenant_id": TENANT_ID}, "data.ms_teams_tenant_id"),
        (
            "slack",
            {"connections": [{"incoming_webhook": {}}]},
            "data.connections[0].incoming_webhook.url",
        ),
        ("teams", {"ms_teams_tenant_id": "not-a-guid"}, "data.ms_teams_tenant_id"),
        ("teams", {"token": {"access_token": "x"}}, "data.token"),
        ("teams", {"connections": [{"ms_teams_tenant_id": TENANT_ID}]}, "data.connections[0]"),
        ("slack", ["not", "an", "object"], "data"),
    ],
)
async def test_data_that_does_not_fit_the_provider_is_422_and_writes_nothing(
    client: TestClient, world: World, channel: str, data: Any, field: str
) -> None:
    channel_id = world.slack.id if channel == "slack" else world.teams.id
    path = f"/v1/objects/projects/p1/channel_data/{channel_id}"
    response = await client.put(path, json={"data": data}, headers=world.secret_headers())
    assert response.status == 422
    body = await response.json()
    assert body["code"] == "invalid_params"
    assert body["type"] == "invalid_request_error"
    assert field in [error["field"] for error in body["errors"]]
    assert (await client.get(path, headers=world.secret_headers())).status == 404


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"connections": []}', b"[]", b"", b"\xff\xfe"],
)
async def test_malformed_bodies_are_422(client: TestClient, world: World, raw: bytes) -> None:
    path = f"/v1/objects/projects/p1/channel_data/{world.slack.id}"
    response = await client.put(
        path, data=raw, headers={**world.secret_headers(), "Content-Type": "application/json"}
    )
    assert response.status == 422
    assert (await response.json())["code"] == "invalid_params"


async def test_oversize_body_is_413_and_writes_nothing(client: TestClient, world: World) -> None:
    path = f"/v1/objects/projects/p1/channel_data/{world.slack.id}"
    connections = [{"channel_id": f"C{i:08d}"} for i in range(20_000)]
    response = await client.put(
        path, json={"data": {"connections": connections}}, headers=world.secret_headers()
    )
    assert response.status == 413
    body = await response.json()
    assert body == {**body, "code": "request_too_large", "status": 413}
    assert (await client.get(path, headers=world.secret_headers())).status == 404


async def test_put_replaces_connections_but_keeps_the_install_token(
    client: TestClient, world: World
) -> None:
    """A combobox writing `connections` must not disconnect the tenant."""
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    headers = world.secret_headers()
    await client.put(path, json={"data": {"token": {"access_token": "xoxb-1"}}}, headers=headers)
    await client.put(path, json={"data": {"connections": [{"channel_id": "C1"}]}}, headers=headers)
    response = await client.put(
        path, json={"data": {"connections": [{"channel_id": "C2"}]}}, headers=headers
    )
    assert (await response.json())["data"] == {
        "connections": [{"channel_id": "C2"}],
        "token": {"access_token": "xoxb-1"},
    }
    cleared = await client.put(path, json={"data": {"token": None}}, headers=headers)
    assert (await cleared.json())["data"] == {"connections": [{"channel_id": "C2"}], "token": None}


async def test_public_writer_cannot_set_credentials_and_keeps_hidden_tokens(
    client: TestClient, world: World
) -> None:
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    await client.put(
        path,
        json={
            "data": {
                "token": {"access_token": "xoxb-t"},
                "connections": [{"channel_id": "C1", "access_token": "xoxb-c1"}],
            }
        },
        headers=world.secret_headers(),
    )
    grants = {tenant_uri("acme"): {"channel_data/read": [{}], "channel_data/write": [{}]}}
    browser = world.public_headers(world.user_token(grants=grants))

    forged = await client.put(
        path, json={"data": {"token": {"access_token": "xoxb-mine"}}}, headers=browser
    )
    assert forged.status == 403

    # The browser round-trips what it sees (no tokens) and adds a channel.
    seen = (await (await client.get(path, headers=browser)).json())["data"]
    seen["connections"].append({"channel_id": "C2"})
    written = await client.put(path, json={"data": seen}, headers=browser)
    assert written.status == 200
    assert "xoxb" not in await written.text()

    stored = (await (await client.get(path, headers=world.secret_headers())).json())["data"]
    assert stored == {
        "token": {"access_token": "xoxb-t"},
        "connections": [{"channel_id": "C1", "access_token": "xoxb-c1"}, {"channel_id": "C2"}],
    }


async def test_writes_are_audited_without_secrets(client: TestClient, world: World) -> None:
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    await client.put(
        path,
        json={"data": {"token": {"access_token": "xoxb-audit"}}},
        headers=world.secret_headers(),
    )
    await client.delete(path, headers=world.secret_headers())
    gateway = client.app[GATEWAY]
    env = await gateway.environments.by_name(world.environment_name)
    assert env is not None
    events = await gateway.audit.recent(environment_id=env.id)
    actions = [event.entry.action for event in events]
    assert actions[:2] == ["channel_data.unset", "channel_data.set"]
    assert events[1].entry.actor.startswith("secret_key:sk_...")
    assert events[1].entry.target == "objects/$tenants/acme"
    assert "xoxb" not in repr(events)
    assert world.secret_key not in repr(events)


async def test_tokens_never_reach_the_logs(
    client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    await client.put(
        path,
        json={"data": {"token": {"access_token": "xoxb-never-logged"}}},
        headers=world.secret_headers(),
    )
    await client.get(path, headers=world.secret_headers())
    await client.get(path, headers={"Authorization": "Bearer sk_wrong_key_never_logged"})
    assert "xoxb-never-logged" not in caplog.text
    assert world.secret_key not in caplog.text
    assert "sk_wrong_key_never_logged" not in caplog.text


async def test_unknown_route_and_wrong_method_use_knocks_body(
    client: TestClient, world: World
) -> None:
    missing = await client.get("/v1/nothing/here", headers=world.secret_headers())
    assert missing.status == 404
    assert (await missing.json())["code"] == "resource_missing"
    wrong = await client.post(
        f"/v1/objects/projects/p1/channel_data/{world.slack.id}", headers=world.secret_headers()
    )
    assert wrong.status == 405
    assert (await wrong.json())["code"] == "method_not_allowed"


async def test_stored_data_is_the_provider_shape(client: TestClient, world: World) -> None:
    gateway = client.app[GATEWAY]
    path = f"/v1/objects/projects/p1/channel_data/{world.teams.id}"
    await client.put(
        path,
        json={
            "data": {
                "connections": [
                    {"ms_teams_team_id": "t", "ms_teams_channel_id": "19:a@thread.tacv2"}
                ]
            }
        },
        headers=world.secret_headers(),
    )
    env = await gateway.environments.by_name(world.environment_name)
    assert env is not None
    stored = await gateway.channel_data.get(
        env.id, world.teams.id, Recipient.object("projects", "p1")
    )
    assert stored == {
        "connections": [{"ms_teams_team_id": "t", "ms_teams_channel_id": "19:a@thread.tacv2"}]
    }


async def test_granted_object_write_with_public_key(client: TestClient, world: World) -> None:
    token = world.user_token(grants={object_uri("videos", "v1"): {"channel_data/write": [{}]}})
    response = await client.put(
        f"/v1/objects/videos/v1/channel_data/{world.slack.id}",
        json={"data": {"connections": [{"channel_id": "C9"}]}},
        headers=world.public_headers(token),
    )
    body = await response.json()
    assert response.status == 200
    assert body == {
        "__typename": "ChannelData",
        "channel_id": world.slack.id,
        "data": {"connections": [{"channel_id": "C9"}]},
    }
