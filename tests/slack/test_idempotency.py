"""Idempotency-Key on PUT: one effect, the same answer, and no reuse with another request."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock

from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import TEAM
from tests.slack.support import install_token
from tests.support import World, seed_world

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
