"""`keys revoke` over HTTP: two replicas on one database both refuse the pair within 5 s,
while key lookups stay cached (no database read per request)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import event

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.gateway import open_gateway
from provider_gateway.web.appkeys import GATEWAY
from tests.support import World, object_uri, seed_world, serve

REVOCATION_DEADLINE_SECONDS = 5.0  # CONTRACT §4: every replica answers 401 within 5 s


def _path(world: World) -> str:
    return f"/v1/objects/projects/p1/channel_data/{world.slack.id}"


async def _status(client: TestClient, world: World, headers: dict[str, str]) -> int:
    response = await client.get(_path(world), headers=headers)
    await response.read()
    return response.status


async def test_a_revoked_pair_is_refused_by_every_replica_within_five_seconds(
    aiohttp_client: Callable[..., Any], settings: Settings
) -> None:
    replicas = [await serve(aiohttp_client, create_app(settings)) for _ in range(2)]
    world = await seed_world(replicas[0].app[GATEWAY])
    environment = await world.gateway.environments.by_name(world.environment_name)
    assert environment is not None
    other = await world.gateway.credentials.issue(environment, actor="test")
    token = world.user_token(grants={object_uri("projects", "p1"): {"channel_data/read": [{}]}})
    # The revoked pair's signing key, presented with another pair's public key.
    borrowed = {"Authorization": f"Bearer {other.public_key}", "X-Knock-User-Token": token}
    for replica in replicas:  # every replica has the pair's lookups cached
        assert await _status(replica, world, world.secret_headers()) == 404
        assert await _status(replica, world, world.public_headers(token)) == 404
        assert await _status(replica, world, borrowed) == 404

    async with open_gateway(settings, run_migrations=False) as cli:
        [pair] = [
            pair
            for pair in await cli.key_pairs.for_environment(environment.id)
            if pair.public_key == world.public_key
        ]
        await cli.key_pairs.revoke(pair.id, actor="cli")
    revoked_at = time.monotonic()

    pending = {
        (index, name): headers
        for index in range(len(replicas))
        for name, headers in (
            ("secret", world.secret_headers()),
            ("public", world.public_headers(token)),
            ("borrowed", borrowed),
        )
    }
    while pending and time.monotonic() - revoked_at < REVOCATION_DEADLINE_SECONDS:
        for (index, name), headers in list(pending.items()):
            if await _status(replicas[index], world, headers) == 401:
                del pending[(index, name)]
        await asyncio.sleep(0.2)
    assert not pending, f"still accepted after {REVOCATION_DEADLINE_SECONDS} s: {sorted(pending)}"
    other_headers = {"Authorization": f"Bearer {other.secret_key}"}
    for replica in replicas:  # the environment's other pair is untouched
        assert await _status(replica, world, other_headers) == 404


async def test_key_lookups_are_cached_between_requests(client: TestClient, world: World) -> None:
    lookups: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "api_keys" in statement:
            lookups.append(statement)

    sync_engine = client.app[GATEWAY].engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(10):
            assert await _status(client, world, world.secret_headers()) == 404
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert len(lookups) <= 1
