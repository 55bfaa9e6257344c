"""Authentication and grants over HTTP: every refusal is Knock's body with the right status."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.keys import new_signing_key
from provider_gateway.web.appkeys import GATEWAY
from tests.support import World, object_uri, seed_world, serve, tenant_uri

GRANTED_OBJECT = ("projects", "p1")


def _path(world: World, collection: str = "projects", object_id: str = "p1") -> str:
    return f"/v1/objects/{collection}/{object_id}/channel_data/{world.slack.id}"


async def _expect_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert set(body) >= {"code", "message", "status", "type"}
    assert "Traceback" not in body["message"]
    return body


async def _seed_data(client: TestClient, world: World) -> None:
    response = await client.put(
        _path(world),
        json={
            "data": {
                "connections": [{"channel_id": "C1", "access_token": "xoxb-conn-secret"}],
                "token": {"access_token": "xoxb-tenant-secret"},
            }
        },
        headers=world.secret_headers(),
    )
    assert response.status == 200


async def test_no_key_is_401_api_key_missing(client: TestClient, world: World) -> None:
    body = await _expect_error(await client.get(_path(world)), 401, "api_key_missing")
    assert body["type"] == "authentication_error"


async def test_malformed_authorization_is_401(client: TestClient, world: World) -> None:
    response = await client.get(_path(world), headers={"Authorization": "Basic Zm9vOmJhcg=="})
    await _expect_error(response, 401, "api_key_missing")


async def test_unknown_key_is_401_invalid_api_key(client: TestClient, world: World) -> None:
    response = await client.get(_path(world), headers={"Authorization": "Bearer sk_not_a_real_key"})
    await _expect_error(response, 401, "invalid_api_key")


async def test_key_of_another_environment_cannot_see_this_one(
    client: TestClient, world: World
) -> None:
    await _seed_data(client, world)
    other = await seed_world(client.app[GATEWAY])
    # The channel belongs to `world`'s environment: to the other environment it does not exist.
    response = await client.get(_path(world), headers=other.secret_headers())
    await _expect_error(response, 404, "resource_missing")


async def test_secret_key_sees_everything(client: TestClient, world: World) -> None:
    await _seed_data(client, world)
    response = await client.get(_path(world), headers=world.secret_headers())
    body = await response.json()
    assert body["data"]["token"] == {"access_token": "xoxb-tenant-secret"}


async def test_public_key_without_user_token_is_401(client: TestClient, world: World) -> None:
    response = await client.get(
        _path(world), headers={"Authorization": f"Bearer {world.public_key}"}
    )
    await _expect_error(response, 401, "invalid_user_token")


async def test_expired_user_token_is_401(client: TestClient, world: World) -> None:
    grants = {object_uri(*GRANTED_OBJECT): {"channel_data/read": [{}]}}
    token = world.user_token(grants=grants, expires_in=-3600)
    body = await _expect_error(
        await client.get(_path(world), headers=world.public_headers(token)),
        401,
        "invalid_user_token",
    )
    assert "expired" in body["message"]


async def test_user_token_without_exp_or_sub_is_401(client: TestClient, world: World) -> None:
    for omitted in ("exp", "sub"):
        token = world.user_token(omit=(omitted,))
        response = await client.get(_path(world), headers=world.public_headers(token))
        await _expect_error(response, 401, "invalid_user_token")


async def test_user_token_signed_by_another_key_is_401(client: TestClient, world: World) -> None:
    forged = world.user_token(
        grants={object_uri(*GRANTED_OBJECT): {"channel_data/read": [{}]}},
        signing_key_pem=new_signing_key().private_pem,
    )
    response = await client.get(_path(world), headers=world.public_headers(forged))
    await _expect_error(response, 401, "invalid_user_token")


async def test_garbage_user_token_is_401(client: TestClient, world: World) -> None:
    response = await client.get(_path(world), headers=world.public_headers("not.a.jwt"))
    await _expect_error(response, 401, "invalid_user_token")


async def test_user_token_without_the_grant_is_403(client: TestClient, world: World) -> None:
    await _seed_data(client, world)
    token = world.user_token(grants={object_uri(*GRANTED_OBJECT): {"channel_data/write": [{}]}})
    body = await _expect_error(
        await client.get(_path(world), headers=world.public_headers(token)), 403, "authorization"
    )
    assert "channel_data/read" in body["message"]


async def test_user_token_for_another_tenant_is_403(client: TestClient, world: World) -> None:
    token = world.user_token(grants={tenant_uri("other-tenant"): {"channel_data/read": [{}]}})
    response = await client.get(
        _path(world, "$tenants", "acme"), headers=world.public_headers(token)
    )
    await _expect_error(response, 403, "authorization")


async def test_public_key_with_grant_reads_but_sees_no_token(
    client: TestClient, world: World
) -> None:
    await _seed_data(client, world)
    token = world.user_token(grants={object_uri(*GRANTED_OBJECT): {"channel_data/read": [{}]}})
    response = await client.get(_path(world), headers=world.public_headers(token))
    assert response.status == 200
    raw = await response.text()
    assert "xoxb" not in raw
    assert (await response.json())["data"] == {"connections": [{"channel_id": "C1"}]}


async def test_grants_match_by_path_whatever_the_host(client: TestClient, world: World) -> None:
    await _seed_data(client, world)
    token = world.user_token(
        grants={"http://gateway.internal:8080/v1/objects/projects/p1": {"channel_data/read": [{}]}}
    )
    response = await client.get(_path(world), headers=world.public_headers(token))
    assert response.status == 200


async def test_a_user_may_read_and_write_their_own_channel_data(
    client: TestClient, world: World
) -> None:
    token = world.user_token(sub="user-7")
    path = f"/v1/users/user-7/channel_data/{world.slack.id}"
    response = await client.put(
        path,
        json={"data": {"connections": [{"user_id": "U7"}]}},
        headers=world.public_headers(token),
    )
    assert response.status == 200
    someone_else = f"/v1/users/user-8/channel_data/{world.slack.id}"
    response = await client.get(someone_else, headers=world.public_headers(token))
    await _expect_error(response, 403, "authorization")


def _token_with(world: World, **claims: Any) -> str:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    grants = {object_uri(*GRANTED_OBJECT): {"channel_data/read": [{}]}}
    key = RSAKey.import_key(world.signing_key_pem)
    return jwt.encode({"alg": "RS256"}, {"sub": "user-1", "grants": grants, **claims}, key)


async def test_a_user_token_signed_to_live_longer_than_the_maximum_is_401(
    client: TestClient, world: World
) -> None:
    await _seed_data(client, world)
    now = int(time.time())
    for claims in (
        {"iat": now, "exp": now + 30 * 86_400},  # a month
        {"exp": now + 2 * 86_400},  # no iat: counted from now
        {"iat": now - 10 * 86_400, "exp": now + 600},  # minted ten days ago, still valid
    ):
        response = await client.get(
            _path(world), headers=world.public_headers(_token_with(world, **claims))
        )
        body = await _expect_error(response, 401, "invalid_user_token")
        assert "GATEWAY_USER_TOKEN_MAX_LIFETIME_SECONDS" in body["message"]
    day = _token_with(world, iat=now, exp=now + 86_400)
    assert (await client.get(_path(world), headers=world.public_headers(day))).status == 200


async def test_the_maximum_token_lifetime_can_be_lifted(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    client = await serve(
        aiohttp_client, create_app(make_settings(GATEWAY_USER_TOKEN_MAX_LIFETIME_SECONDS="0"))
    )
    world = await seed_world(client.app[GATEWAY])
    await _seed_data(client, world)
    now = int(time.time())
    year = _token_with(world, iat=now, exp=now + 365 * 86_400)
    assert (await client.get(_path(world), headers=world.public_headers(year))).status == 200
