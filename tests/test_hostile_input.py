"""Hostile ids and JSON get a 4xx in Knock's body, on SQLite and PostgreSQL alike: never a 500,
never a driver error in the log."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from tests.support import World, posted_message

LONG = "x" * 256
DEEP = "[" * 3000 + "]" * 3000  # bodies: past the interpreter's recursion limit
DEEP_QUERY = "[" * 1200  # a query value: still past the recursion limit, under 8 KiB encoded


@pytest.fixture(autouse=True)
def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> object:
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _path(collection: str, object_id: str, channel_id: str) -> str:
    object_path = f"{quote(collection, safe='$')}/{quote(object_id, safe='')}"
    return f"/v1/objects/{object_path}/channel_data/{channel_id}"


@pytest.mark.parametrize(
    ("collection", "object_id"),
    [
        ("projects", "a\x00b"),
        ("pro\x00jects", "p1"),
        ("projects", LONG),
        (LONG, "p1"),
        ("projects", "line\nbreak"),
    ],
    ids=["nul-id", "nul-collection", "long-id", "long-collection", "newline"],
)
async def test_object_ids_with_nul_or_over_255_characters_are_422(
    client: TestClient, world: World, collection: str, object_id: str
) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(
            method,
            _path(collection, object_id, world.slack.id),
            json={"data": {"connections": []}},
            headers=world.secret_headers(),
        )
        assert response.status == 422, await response.text()
        body = await response.json()
        assert body["code"] == "invalid_params"
        assert body["errors"][0]["field"] in {"collection", "object_id"}


@pytest.mark.parametrize("user_id", ["u\x00", LONG])
async def test_user_ids_with_nul_or_over_255_characters_are_422(
    client: TestClient, world: World, user_id: str
) -> None:
    response = await client.get(
        f"/v1/users/{quote(user_id, safe='')}/channel_data/{world.slack.id}",
        headers=world.secret_headers(),
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "user_id"


@pytest.mark.parametrize(
    "params",
    [
        {"user_id": "u\x00"},
        {"target": LONG},
        {"collection": "projects", "object_id": "p\x00"},
        {"channel_id": "c\x00"},
        {"action": "install\x00"},
    ],
)
async def test_audit_filters_with_nul_or_over_255_characters_are_422(
    client: TestClient, world: World, params: dict[str, str]
) -> None:
    response = await client.get("/v1/audit_events", params=params, headers=world.secret_headers())
    assert response.status == 422, await response.text()


@pytest.mark.parametrize(
    "reference",
    [
        {"access_token_object": json.dumps({"collection": "$tenants", "object_id": "a\x00"})},
        {"access_token_object": json.dumps({"collection": "$tenants", "object_id": LONG})},
        {"access_token_object[object_id]": "a\x00", "access_token_object[collection]": "$tenants"},
        {"access_token_object": DEEP_QUERY},
        {"access_token_object": '{"collection": "$tenants", "object_id": ' + DEEP_QUERY},
        {"access_token_object": '{"object_id": ' + '{"x":' * 40 + "1" + "}" * 41},
    ],
    ids=["json-nul", "json-long", "brackets-nul", "deep", "deep-field", "over-depth-limit"],
)
async def test_hostile_object_references_are_422(
    client: TestClient, world: World, reference: dict[str, str]
) -> None:
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params=reference,
        headers=world.secret_headers(),
    )
    assert response.status == 422, await response.text()
    assert (await response.json())["code"] == "invalid_params"


async def test_a_deeply_nested_put_body_is_422(client: TestClient, world: World) -> None:
    for body in (DEEP, '{"data": ' + DEEP + "}", '{"data": {"connections": ' + DEEP + "}}"):
        response = await client.put(
            _path("projects", "p1", world.slack.id),
            data=body,
            headers={**world.secret_headers(), "Content-Type": "application/json"},
        )
        assert response.status == 422, await response.text()
    absent = await client.get(
        _path("projects", "p1", world.slack.id), headers=world.secret_headers()
    )
    assert absent.status == 404


async def test_channel_data_ids_with_control_characters_are_422(
    client: TestClient, world: World
) -> None:
    response = await client.put(
        _path("projects", "p1", world.slack.id),
        json={"data": {"connections": [{"channel_id": "C1\x00"}]}},
        headers=world.secret_headers(),
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "data.connections[0].channel_id"


@pytest.mark.parametrize(
    "state",
    [
        DEEP_QUERY,
        json.dumps({"access_token_object": json.loads("[" * 50 + "]" * 50), "channel_id": "x"}),
        '{"channel_id": ' + '{"x":' * 500 + "1" + "}" * 501,
    ],
    ids=["deep-array", "deep-reference", "deep-object"],
)
async def test_a_deeply_nested_callback_state_is_the_auth_failed_page(
    client: TestClient, world: World, state: str
) -> None:
    for provider in ("slack", "ms-teams"):
        response = await client.get(
            f"/providers/{provider}/authenticate", params={"code": "c", "state": state}
        )
        assert response.status == 400
        assert posted_message(await response.text())["type"] == "authFailed"


@pytest.mark.parametrize("field", ["object_id", "collection", "channel_id"])
async def test_a_callback_state_with_a_nul_in_an_id_stores_nothing(
    client: TestClient, world: World, field: str
) -> None:
    state = {
        "access_token_object": {"object_id": "acme", "collection": "$tenants"},
        "channel_id": world.slack.id,
        "public_key": world.public_key,
        "user_token": world.user_token(),
    }
    if field == "channel_id":
        state["channel_id"] = world.slack.id + "\x00"
    else:
        state["access_token_object"][field] += "\x00"  # type: ignore[index]
    response = await client.get(
        "/providers/slack/authenticate", params={"code": "c", "state": json.dumps(state)}
    )
    assert response.status == 400
    assert posted_message(await response.text()) == {
        "type": "authFailed",
        "reason": "invalid_state",
    }


async def test_checks_remembered_for_valid_requests_still_refuse_near_misses(
    client: TestClient, world: World
) -> None:
    """Valid references, option sets and query strings are remembered to skip re-checking;
    a request differing from one in a single bad value is refused, every time."""
    url = f"/v1/providers/slack/{world.slack.id}/channels"
    good = {
        "access_token_object": json.dumps({"collection": "$tenants", "object_id": "acme"}),
        "query_options[types]": "public_channel",
    }
    near_misses = [
        {**good, "access_token_object": json.dumps({"collection": "$tenants", "object_id": ""})},
        {**good, "query_options[types]": "public_channel,nope"},
        {**good, "query_options[cursor]": "a\x00b"},
    ]
    for _ in range(2):
        answered = await client.get(url, params=good, headers=world.secret_headers())
        assert answered.status == 403  # valid, and no token stored for this tenant
        for params in near_misses:
            response = await client.get(url, params=params, headers=world.secret_headers())
            assert response.status == 422, (params, await response.text())
