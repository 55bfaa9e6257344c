"""The users API, driven by the official knockapi SDK (users resource) and by raw HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock, NotFoundError, UnprocessableEntityError

from provider_gateway.models import Recipient
from provider_gateway.rate_limits import tier_for
from provider_gateway.web.appkeys import GATEWAY
from provider_gateway.web.ops import openapi_document
from tests.support import World, seed_world

TENANT_GUID = "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d"


@pytest.fixture
async def knock(client: TestClient, world: World) -> AsyncIterator[AsyncKnock]:
    sdk = AsyncKnock(api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0)
    async with sdk:
        yield sdk


async def _environment_id(client: TestClient, world: World) -> str:
    environment = await client.app[GATEWAY].environments.by_name(world.environment_name)
    assert environment is not None
    return environment.id


async def test_sdk_identify_creates_the_user_then_merges_what_it_names(knock: AsyncKnock) -> None:
    created = await knock.users.update(
        "u-1",
        name="Dr. Ian Malcolm",
        email="ian.malcolm@chaos.theory",
        timezone="America/New_York",
        extra_body={"plan": "pro", "tags": ["chaos", {"level": 2}]},
    )
    assert created.id == "u-1"
    assert created.api_typename == "User"
    assert created.name == "Dr. Ian Malcolm"
    assert created.created_at is None  # "the creation date of the user from your system"
    assert created.to_dict()["plan"] == "pro"  # custom properties at top level, as Knock does

    merged = await knock.users.update("u-1", phone_number="+15555550100", locale="en-US")
    assert merged.name == "Dr. Ian Malcolm"  # kept: the second identify did not name it
    assert merged.phone_number == "+15555550100"
    assert merged.updated_at >= created.updated_at

    fetched = await knock.users.get("u-1")
    assert fetched.to_dict() == merged.to_dict()
    assert fetched.to_dict() == {
        "__typename": "User",
        "id": "u-1",
        "name": "Dr. Ian Malcolm",
        "email": "ian.malcolm@chaos.theory",
        "phone_number": "+15555550100",
        "avatar": None,
        "locale": "en-US",
        "timezone": "America/New_York",
        "created_at": None,
        "updated_at": fetched.to_dict()["updated_at"],
        "plan": "pro",
        "tags": ["chaos", {"level": 2}],
    }


async def test_null_removes_a_property_and_created_at_is_the_callers(
    client: TestClient, world: World
) -> None:
    headers = world.secret_headers()
    await client.put("/v1/users/u-2", json={"name": "A", "team": "x"}, headers=headers)
    response = await client.put(
        "/v1/users/u-2",
        json={"team": None, "name": None, "created_at": "2024-05-22T14:00:00+02:00"},
        headers=headers,
    )
    body = await response.json()
    assert response.status == 200, body
    assert "team" not in body
    assert body["name"] is None
    assert body["created_at"] == "2024-05-22T12:00:00Z"


async def test_an_identify_that_changes_nothing_writes_nothing(
    client: TestClient, world: World
) -> None:
    """KnockProvider identifies on every page load: the same properties again are no write."""
    headers = world.secret_headers()
    first = await (await client.put("/v1/users/u-3", json={"name": "A"}, headers=headers)).json()
    again = await (await client.put("/v1/users/u-3", json={"name": "A"}, headers=headers)).json()
    assert again["updated_at"] == first["updated_at"]
    changed = await (await client.put("/v1/users/u-3", json={"name": "B"}, headers=headers)).json()
    assert changed["updated_at"] > first["updated_at"]


async def test_a_user_read_back_can_be_sent_again(client: TestClient, world: World) -> None:
    headers = world.secret_headers()
    user = await (await client.put("/v1/users/u-4", json={"name": "A"}, headers=headers)).json()
    echoed = await client.put("/v1/users/u-4", json=user, headers=headers)
    assert echoed.status == 200
    assert await echoed.json() == user


async def test_sdk_get_of_an_unknown_user_is_404_in_knocks_body(
    client: TestClient, world: World, knock: AsyncKnock
) -> None:
    with pytest.raises(NotFoundError):
        await knock.users.get("nobody")
    response = await client.get("/v1/users/nobody", headers=world.secret_headers())
    assert response.status == 404
    assert await response.json() == {
        "code": "resource_missing",
        "message": "User nobody not found",
        "status": 404,
        "type": "invalid_request_error",
    }


async def test_sdk_delete_removes_the_user_and_its_channel_data_on_every_channel(
    client: TestClient, world: World, knock: AsyncKnock
) -> None:
    await knock.users.update("u-del", name="Gone Soon")
    await knock.users.set_channel_data(
        "u-del", world.slack.id, data={"connections": [{"user_id": "U1"}]}
    )
    await knock.users.set_channel_data(
        "u-del", world.teams.id, data={"connections": [{"ms_teams_user_id": "t-user"}]}
    )
    await knock.users.set_channel_data(
        "u-kept", world.slack.id, data={"connections": [{"user_id": "U2"}]}
    )

    await knock.users.delete("u-del")

    with pytest.raises(NotFoundError):
        await knock.users.get("u-del")
    for channel in (world.slack, world.teams):
        with pytest.raises(NotFoundError):
            await knock.users.get_channel_data("u-del", channel.id)
    kept = await knock.users.get_channel_data("u-kept", world.slack.id)
    assert kept.data.to_dict() == {"connections": [{"user_id": "U2"}]}  # type: ignore[union-attr]

    await knock.users.delete("u-del")  # a retried DELETE is not an error
    events = await client.app[GATEWAY].audit.recent(
        environment_id=await _environment_id(client, world)
    )
    deletions = [event.entry for event in events if event.entry.action == "user.deleted"]
    assert len(deletions) == 1
    assert deletions[0].target == "users/u-del"
    assert deletions[0].details == {"channel_data_removed": 2}
    assert deletions[0].actor.startswith("secret_key:")


async def test_sdk_lists_every_user_once_in_insertion_order(knock: AsyncKnock) -> None:
    ids = [f"list-{i}" for i in (3, 1, 4, 0, 5, 9, 2)]
    for user_id in ids:
        await knock.users.update(user_id, name=user_id)
    listed = [user.id async for user in knock.users.list(page_size=3)]
    assert listed == ids
    newest_first = [user.id async for user in knock.users.list(page_size=2, order="desc")]
    assert newest_first == ids[::-1]


async def test_page_info_cursors_walk_both_ways(client: TestClient, world: World) -> None:
    headers = world.secret_headers()
    for i in range(5):
        await client.put(f"/v1/users/p-{i}", json={}, headers=headers)

    async def page(**params: Any) -> dict[str, Any]:
        response = await client.get("/v1/users", params=params, headers=headers)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    first = await page(page_size=2)
    assert [user["id"] for user in first["entries"]] == ["p-0", "p-1"]
    assert first["page_info"]["before"] is None
    assert first["page_info"]["page_size"] == 2
    second = await page(page_size=2, after=first["page_info"]["after"])
    assert [user["id"] for user in second["entries"]] == ["p-2", "p-3"]
    back = await page(page_size=2, before=second["page_info"]["before"])
    assert back["entries"] == first["entries"]
    last = await page(page_size=2, after=second["page_info"]["after"])
    assert [user["id"] for user in last["entries"]] == ["p-4"]
    assert last["page_info"]["after"] is None
    assert last["page_info"]["before"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "not-a-cursor"}, "after"),
        ({"before": "dXNlcjox", "after": "dXNlcjox"}, "before"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"order": "sideways"}, "order"),
        ({"include[]": "preferences"}, "include"),
    ],
)
async def test_bad_list_parameters_are_422_naming_them(
    client: TestClient, world: World, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/users", params=params, headers=world.secret_headers())
    assert response.status == 422
    assert [error["field"] for error in (await response.json())["errors"]] == [field]


async def test_users_are_per_environment(client: TestClient, world: World) -> None:
    other = await seed_world(client.app[GATEWAY])
    await client.put("/v1/users/shared-id", json={"name": "Here"}, headers=world.secret_headers())
    assert (await client.get("/v1/users/shared-id", headers=other.secret_headers())).status == 404
    listed = await (await client.get("/v1/users", headers=other.secret_headers())).json()
    assert listed["entries"] == []
    await client.delete("/v1/users/shared-id", headers=other.secret_headers())
    assert (await client.get("/v1/users/shared-id", headers=world.secret_headers())).status == 200


async def test_inline_channel_data_is_stored_as_the_channel_data_api_stores_it(
    client: TestClient, world: World, knock: AsyncKnock
) -> None:
    user = await knock.users.update(
        "u-inline",
        name="Inline",
        channel_data={
            world.slack.id: {"connections": [{"user_id": "U-INLINE"}]},
            world.teams.id: {"connections": [{"ms_teams_user_id": "t-inline"}]},
        },
    )
    assert "channel_data" not in user.to_dict()
    slack = await knock.users.get_channel_data("u-inline", world.slack.id)
    assert slack.data.to_dict() == {"connections": [{"user_id": "U-INLINE"}]}  # type: ignore[union-attr]
    teams = await knock.users.get_channel_data("u-inline", world.teams.id)
    assert teams.data.to_dict() == {"connections": [{"ms_teams_user_id": "t-inline"}]}  # type: ignore[union-attr]
    events = await client.app[GATEWAY].audit.recent(
        environment_id=await _environment_id(client, world)
    )
    assert [e.entry.channel_id for e in events if e.entry.action == "channel_data.set"] == [
        world.teams.id,
        world.slack.id,
    ]


async def test_inline_channel_data_is_all_or_nothing(client: TestClient, world: World) -> None:
    """One bad entry: 422 naming it, and neither the user nor the good entry is written."""
    response = await client.put(
        "/v1/users/u-atomic",
        json={
            "name": "Atomic",
            "channel_data": {
                world.slack.id: {"connections": [{"user_id": "U-OK"}]},
                world.teams.id: {"ms_teams_tenant_id": "not-a-guid"},
                "3d6b2f1c-1111-4a6b-9c1d-2e3f4a5b6c7d": {"connections": []},
            },
        },
        headers=world.secret_headers(),
    )
    assert response.status == 422
    fields = [error["field"] for error in (await response.json())["errors"]]
    assert fields == [
        f"channel_data.{world.teams.id}.ms_teams_tenant_id",
        "channel_data.3d6b2f1c-1111-4a6b-9c1d-2e3f4a5b6c7d",
    ]
    headers = world.secret_headers()
    assert (await client.get("/v1/users/u-atomic", headers=headers)).status == 404
    path = f"/v1/users/u-atomic/channel_data/{world.slack.id}"
    assert (await client.get(path, headers=headers)).status == 404


async def test_sdk_inline_preferences_are_422_naming_the_field(
    client: TestClient, world: World, knock: AsyncKnock
) -> None:
    with pytest.raises(UnprocessableEntityError) as raised:
        await knock.users.update(
            "u-prefs", name="Prefs", preferences={"default": {"channel_types": {"email": True}}}
        )
    body: Any = raised.value.body
    assert body["code"] == "invalid_params"
    assert [error["field"] for error in body["errors"]] == ["preferences"]
    assert (await client.get("/v1/users/u-prefs", headers=world.secret_headers())).status == 404


async def test_a_channel_data_put_creates_the_user_as_knock_does(
    client: TestClient, world: World, knock: AsyncKnock
) -> None:
    await knock.users.set_channel_data(
        "u-from-data", world.slack.id, data={"connections": [{"user_id": "U9"}]}
    )
    user = await knock.users.get("u-from-data")
    assert user.id == "u-from-data"
    assert user.name is None
    # A refused channel data write creates nothing.
    refused = await client.put(
        f"/v1/users/u-refused/channel_data/{world.teams.id}",
        json={"data": {"ms_teams_tenant_id": "nope"}},
        headers=world.secret_headers(),
    )
    assert refused.status == 422
    with pytest.raises(NotFoundError):
        await knock.users.get("u-refused")
    # Identifying later merges into the user the channel data made, keeping its data.
    await knock.users.update("u-from-data", name="Named later")
    data = await knock.users.get_channel_data("u-from-data", world.slack.id)
    assert data.data.to_dict() == {"connections": [{"user_id": "U9"}]}  # type: ignore[union-attr]


def test_users_paths_have_knocks_rate_limit_tiers() -> None:
    """x-ratelimit-tier of listUsers, getUser, identifyUser and deleteUser."""
    assert tier_for("GET", "/v1/users") == 4
    assert tier_for("GET", "/v1/users/u-1") == 4
    assert tier_for("PUT", "/v1/users/u-1") == 3
    assert tier_for("DELETE", "/v1/users/u-1") == 2
    assert tier_for("PUT", "/v1/users/u-1/channel_data/c") == 3  # channel data keeps its own


def test_the_openapi_document_describes_the_users_api() -> None:
    document = openapi_document()
    user_path = document["paths"]["/v1/users/{user_id}"]
    assert {"get", "put", "delete"} <= set(user_path)
    assert user_path["put"]["operationId"] == "identifyUser"
    assert document["paths"]["/v1/users"]["get"]["operationId"] == "listUsers"
    assert {"User", "IdentifyUserRequest", "ListUsersResponse"} <= set(
        document["components"]["schemas"]
    )


async def test_user_channel_data_removed_by_delete_reads_as_absent_in_the_store(
    client: TestClient, world: World
) -> None:
    headers = world.secret_headers()
    await client.put(
        f"/v1/users/u-store/channel_data/{world.slack.id}",
        json={"data": {"connections": [{"user_id": "U5"}]}},
        headers=headers,
    )
    assert (await client.delete("/v1/users/u-store", headers=headers)).status == 204
    stored = await client.app[GATEWAY].channel_data.get(
        await _environment_id(client, world), world.slack.id, Recipient.user("u-store")
    )
    assert stored is None
