"""Attacks on the users API: other users' records, credentials through inline channel data,
hostile ids and bodies. Each is refused in Knock's error body and stores nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from provider_gateway.web.appkeys import GATEWAY
from tests.support import World

TENANT_GUID = "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d"


def _is_knock_error(body: dict[str, Any], status: int, code: str) -> None:
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert {"code", "message", "status", "type"} <= set(body)


async def _user_rows(client: TestClient) -> int:
    async with client.app[GATEWAY].engine.connect() as connection:
        return int((await connection.execute(text("SELECT COUNT(*) FROM users"))).scalar_one())


async def test_a_user_token_identifies_and_reads_only_its_own_user(
    client: TestClient, world: World
) -> None:
    browser = world.public_headers(world.user_token("alice"))
    own = await client.put("/v1/users/alice", json={"name": "Alice"}, headers=browser)
    assert own.status == 200
    assert (await (await client.get("/v1/users/alice", headers=browser)).json())["name"] == "Alice"

    await client.put("/v1/users/bob", json={"name": "Bob"}, headers=world.secret_headers())
    for response in (
        await client.put("/v1/users/bob", json={"name": "Mallory"}, headers=browser),
        await client.put("/v1/users/carol", json={"name": "Mallory"}, headers=browser),
        await client.get("/v1/users/bob", headers=browser),
    ):
        assert response.status == 403
        _is_knock_error(await response.json(), 403, "authorization")
    bob = await (await client.get("/v1/users/bob", headers=world.secret_headers())).json()
    assert bob["name"] == "Bob"
    assert (await client.get("/v1/users/carol", headers=world.secret_headers())).status == 404


async def test_grants_on_another_user_do_not_open_its_record(
    client: TestClient, world: World
) -> None:
    """channel_data grants are about channel data: they never let a token identify bob."""
    grants = {
        "https://api.knock.app/v1/users/bob": {
            "channel_data/read": [{}],
            "channel_data/write": [{}],
        }
    }
    browser = world.public_headers(world.user_token("alice", grants=grants))
    response = await client.put("/v1/users/bob", json={"name": "Mallory"}, headers=browser)
    assert response.status == 403


async def test_delete_and_list_need_a_secret_key(client: TestClient, world: World) -> None:
    browser = world.public_headers(world.user_token("alice"))
    await client.put("/v1/users/alice", json={"name": "Alice"}, headers=browser)
    for response in (
        await client.delete("/v1/users/alice", headers=browser),
        await client.get("/v1/users", headers=browser),
    ):
        assert response.status == 403
        _is_knock_error(await response.json(), 403, "authorization")
    assert (await client.get("/v1/users/alice", headers=browser)).status == 200


async def test_a_browser_cannot_smuggle_credentials_through_inline_channel_data(
    client: TestClient, world: World
) -> None:
    browser = world.public_headers(world.user_token("alice"))
    for forged in (
        {world.slack.id: {"token": {"access_token": "xoxb-forged"}}},
        {world.slack.id: {"connections": [{"channel_id": "C1", "access_token": "xoxb-forged"}]}},
        {world.teams.id: {"ms_teams_tenant_id": TENANT_GUID}},
    ):
        response = await client.put(
            "/v1/users/alice", json={"name": "Alice", "channel_data": forged}, headers=browser
        )
        assert response.status == 403, await response.text()
    assert await _user_rows(client) == 0  # refused before anything was written
    for channel in (world.slack, world.teams):
        path = f"/v1/users/alice/channel_data/{channel.id}"
        assert (await client.get(path, headers=world.secret_headers())).status == 404


async def test_a_browser_may_set_its_own_connections_inline(
    client: TestClient, world: World
) -> None:
    browser = world.public_headers(world.user_token("alice"))
    inline = {world.slack.id: {"connections": [{"user_id": "U-ALICE"}]}}
    response = await client.put("/v1/users/alice", json={"channel_data": inline}, headers=browser)
    assert response.status == 200
    path = f"/v1/users/alice/channel_data/{world.slack.id}"
    stored = await (await client.get(path, headers=browser)).json()
    assert stored["data"] == {"connections": [{"user_id": "U-ALICE"}]}


@pytest.mark.parametrize(
    "user_id",
    ["%0Aforged-log-line", "a%00b", "tab%09id", "x" * 256, "%7F"],
    ids=["newline", "nul", "tab", "too-long", "del"],
)
async def test_hostile_user_ids_are_422_and_store_nothing(
    client: TestClient, world: World, user_id: str
) -> None:
    headers = world.secret_headers()
    for method in ("PUT", "GET", "DELETE"):
        response = await client.request(
            method, f"/v1/users/{user_id}", json={"name": "x"}, headers=headers
        )
        assert response.status == 422, (method, await response.text())
        _is_knock_error(await response.json(), 422, "invalid_params")
    assert await _user_rows(client) == 0


@pytest.mark.parametrize(
    "raw",
    [b"", b"{not json", b"[]", b'"name"', b"5", b"null", b'{"a": NaN}', b'{"a": 1e999}', b"\xff"],
    ids=["empty", "broken", "array", "string", "number", "null", "nan", "infinite", "not-utf8"],
)
async def test_bodies_that_are_not_a_json_object_are_422(
    client: TestClient, world: World, raw: bytes
) -> None:
    response = await client.put(
        "/v1/users/u-1",
        data=raw,
        headers={**world.secret_headers(), "Content-Type": "application/json"},
    )
    assert response.status == 422
    body = await response.json()
    _is_knock_error(body, 422, "invalid_params")
    assert [error["field"] for error in body["errors"]] == ["body"]
    assert await _user_rows(client) == 0


async def test_deeply_nested_bodies_are_422(client: TestClient, world: World) -> None:
    headers = {**world.secret_headers(), "Content-Type": "application/json"}
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.put("/v1/users/u-1", data=deep, headers=headers)
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "body", "message": "is nested too deeply"}
    ]
    nested: Any = "leaf"
    for _ in range(17):
        nested = {"down": nested}
    response = await client.put("/v1/users/u-1", json={"profile": nested}, headers=headers)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["profile"]
    assert await _user_rows(client) == 0


async def test_a_huge_body_is_413_and_stores_nothing(client: TestClient, world: World) -> None:
    response = await client.put(
        "/v1/users/u-1", json={"bio": "x" * 300_000}, headers=world.secret_headers()
    )
    assert response.status == 413
    _is_knock_error(await response.json(), 413, "request_too_large")
    assert await _user_rows(client) == 0


async def test_properties_cannot_grow_past_one_body_by_merging(
    client: TestClient, world: World
) -> None:
    headers = world.secret_headers()
    first = await client.put("/v1/users/u-1", json={"a": "x" * 150_000}, headers=headers)
    assert first.status == 200
    second = await client.put("/v1/users/u-1", json={"b": "y" * 150_000}, headers=headers)
    assert second.status == 422
    assert [e["field"] for e in (await second.json())["errors"]] == ["body"]
    stored = await (await client.get("/v1/users/u-1", headers=headers)).json()
    assert "b" not in stored
    assert len(stored["a"]) == 150_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ["a@b.c"]}, "email"),
        ({"phone_number": 5551234}, "phone_number"),
        ({"avatar": {"url": "https://x"}}, "avatar"),
        ({"locale": "en US"}, "locale"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": 1700000000}, "created_at"),
        ({"id": "someone-else"}, "id"),
        ({"channel_data": ["not", "a", "map"]}, "channel_data"),
        ({"channel_data": {"c" * 256: {"connections": []}}}, "channel_data"),
        ({"channel_data": {"chan\nnel": {"connections": []}}}, "channel_data"),
        ({"bad\u0000key": 1}, "bad?key"),
        ({"x" * 256: 1}, "x" * 40),
    ],
)
async def test_invalid_properties_are_422_naming_the_field(
    client: TestClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await client.put("/v1/users/u-1", json=body, headers=world.secret_headers())
    assert response.status == 422, await response.text()
    answer = await response.json()
    _is_knock_error(answer, 422, "invalid_params")
    assert [error["field"] for error in answer["errors"]] == [field]
    assert await _user_rows(client) == 0


async def test_concurrent_identifies_of_one_user_all_land(client: TestClient, world: World) -> None:
    headers = world.secret_headers()
    responses = await asyncio.gather(
        *(client.put("/v1/users/busy", json={f"p{i}": i}, headers=headers) for i in range(20))
    )
    assert [response.status for response in responses] == [200] * 20
    stored = await (await client.get("/v1/users/busy", headers=headers)).json()
    assert {f"p{i}": i for i in range(20)}.items() <= stored.items()


async def test_personal_data_is_encrypted_at_rest(client: TestClient, world: World) -> None:
    email = "never-in-clear@example.test"
    await client.put(
        "/v1/users/u-secret",
        json={"email": email, "ssn": "123-45-6789"},
        headers=world.secret_headers(),
    )
    async with client.app[GATEWAY].engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM users"))).all()
    dumped = json.dumps([list(map(str, row)) for row in rows])
    assert "u-secret" in dumped  # the id is the lookup key, as for channel data
    assert email not in dumped
    assert "123-45-6789" not in dumped
