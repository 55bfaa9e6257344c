"""Idempotency-Key on PUT: one effect, the same answer, and no reuse with another request."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import FakeSlack
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.slack.conftest import TEAM
from tests.slack.support import install_token
from tests.support import World, object_uri, seed_world, serve

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


async def _sets(client: TestClient, world: World) -> int:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    events = await gateway.audit.recent(environment_id=environment.id)
    return sum(event.entry.action == "channel_data.set" for event in events)


async def test_a_repeated_put_has_one_effect_and_the_same_answer(
    client: TestClient, world: World
) -> None:
    path = f"/v1/objects/projects/p1/channel_data/{world.slack.id}"
    headers = {**world.secret_headers(), "Idempotency-Key": "put-1"}
    body = {"data": {"connections": [{"channel_id": "C1"}]}}
    before = await _sets(client, world)
    first, second = [await client.put(path, json=body, headers=headers) for _ in range(2)]
    assert (first.status, second.status) == (200, 200)
    assert await first.read() == await second.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await _sets(client, world) == before + 1

    reused = await client.put(path, json={"data": {"connections": []}}, headers=headers)
    assert reused.status == 422
    assert (await reused.json())["errors"][0]["field"] == "Idempotency-Key"


async def test_concurrent_duplicates_still_have_one_effect(
    client: TestClient, world: World
) -> None:
    path = f"/v1/objects/projects/p2/channel_data/{world.slack.id}"
    headers = {**world.secret_headers(), "Idempotency-Key": "put-2"}
    before = await _sets(client, world)
    responses = await asyncio.gather(
        *(client.put(path, json={"data": {"connections": []}}, headers=headers) for _ in range(10))
    )
    assert [response.status for response in responses] == [200] * 10
    assert await _sets(client, world) == before + 1


async def test_revoke_with_the_sdks_idempotency_key_revokes_once(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    async with AsyncKnock(
        api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0
    ) as knock:
        for _ in range(3):
            revoked = await knock.providers.slack.revoke_access(
                world.slack.id, access_token_object=TENANT, idempotency_key="revoke-1"
            )
            assert revoked.ok == "ok"
    assert len(fake_slack.calls_to("auth.revoke")) == 1


async def test_keys_are_per_environment(client: TestClient, world: World) -> None:
    other = await seed_world(client.app[GATEWAY])
    for who in (world, other):
        response = await client.put(
            f"/v1/objects/projects/p3/channel_data/{who.slack.id}",
            json={"data": {"connections": [{"channel_id": "C3"}]}},
            headers={**who.secret_headers(), "Idempotency-Key": "shared-key"},
        )
        assert response.status == 200
        assert "Idempotent-Replayed" not in response.headers


def _writer(world: World, sub: str, *, may_write: bool = True) -> dict[str, str]:
    grants = {object_uri("projects", "shared"): {"channel_data/write": [{}]}} if may_write else {}
    return world.public_headers(world.user_token(sub, grants))


async def test_a_caller_without_the_grant_gets_no_replay(client: TestClient, world: World) -> None:
    """A stored 200 was replayed to anyone in the environment who sent the same key."""
    path = f"/v1/objects/projects/shared/channel_data/{world.slack.id}"
    body = {"data": {"connections": [{"channel_id": "C9"}]}}
    first = await client.put(
        path, json=body, headers={**_writer(world, "alice"), "Idempotency-Key": "k1"}
    )
    assert first.status == 200
    for intruder in (
        _writer(world, "mallory", may_write=False),
        _writer(world, "alice", may_write=False),
    ):
        replay = await client.put(path, json=body, headers={**intruder, "Idempotency-Key": "k1"})
        assert replay.status == 403
        assert "Idempotent-Replayed" not in replay.headers


async def test_keys_belong_to_their_caller(client: TestClient, world: World) -> None:
    """Another user's key is neither replayed nor reported as used (the 422 told who used it)."""
    path = f"/v1/objects/projects/shared/channel_data/{world.slack.id}"
    first = await client.put(
        path,
        json={"data": {"connections": [{"channel_id": "C1"}]}},
        headers={**_writer(world, "alice"), "Idempotency-Key": "k2"},
    )
    second = await client.put(
        path,
        json={"data": {"connections": [{"channel_id": "C2"}]}},
        headers={**_writer(world, "bob"), "Idempotency-Key": "k2"},
    )
    assert (first.status, second.status) == (200, 200)
    assert "Idempotent-Replayed" not in second.headers
    assert (await second.json())["data"]["connections"] == [{"channel_id": "C2"}]


def test_every_put_route_says_how_a_replay_is_authorized(client: TestClient) -> None:
    puts = [r for r in client.app.router.routes() if r.method == "PUT"]
    assert puts
    assert all(hasattr(route.handler, "_idempotency_authorize") for route in puts)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


async def test_stored_answers_hold_no_secret_in_redis(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    redis_prefix: str,
) -> None:
    """Records held the request body and the answer (tokens included) in clear for 24 hours."""
    settings = make_settings(
        SLACK_API_URL=fake_slack.api_url,
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=redis_prefix,
    )
    app = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(app.app[GATEWAY])
    token = "xoxb-" + uuid.uuid4().hex
    headers = {**world.secret_headers(), "Idempotency-Key": "install-acme-1"}
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    body = {"data": {"token": {"access_token": token}, "connections": []}}
    for _ in range(2):
        response = await app.put(path, json=body, headers=headers)
        assert response.status == 200
    assert response.headers["Idempotent-Replayed"] == "true"
    assert (await response.json())["data"]["token"]["access_token"] == token

    raw = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in raw.scan_iter(f"{redis_prefix}:*")]
        values = [await raw.get(key) for key in keys if await raw.type(key) == b"string"]
        records = [await raw.get(key) for key in keys if b":idempotency:" in key]
    finally:
        await raw.aclose()
    assert len(records) == 1
    # Fernet ciphertext, not JSON with the answer base64-encoded inside.
    assert all((record or b"").startswith(b"gAAAAA") for record in records)
    everything = b" ".join([*keys, *(value or b"" for value in values)])
    for secret in (token.encode(), b"install-acme-1", b"acme", world.secret_key.encode()):
        assert secret not in everything
