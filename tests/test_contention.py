"""Many writers on one record at once: every write succeeds, none is lost, none answers 5xx
(CONTRACT §4), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import ColumnElement, Table, select

from provider_gateway.gateway import Gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.contention import ConcurrentUpdateError
from provider_gateway.storage.schema import channel_data, users
from provider_gateway.web.appkeys import GATEWAY
from provider_gateway.web.middlewares import error_response
from tests.support import World, seed_world

WRITERS = 100


async def _version_of(client: TestClient, table: Table, *conditions: ColumnElement[bool]) -> int:
    engine = client.app[GATEWAY].engine
    async with engine.connect() as connection:
        query = select(table.c.version).where(*conditions)
        version = (await connection.execute(query)).scalar_one()
    assert isinstance(version, int)
    return version


async def test_concurrent_puts_to_one_channel_data_record_all_succeed_and_the_last_wins(
    client: TestClient, world: World
) -> None:
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    headers = world.secret_headers()
    await client.put(path, json={"data": {"token": {"access_token": "xoxb-kept"}}}, headers=headers)

    async def put(writer: int) -> int:
        data = {"connections": [{"channel_id": f"C{writer:04d}"}]}
        response = await client.put(path, json={"data": data}, headers=headers)
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(put(writer) for writer in range(WRITERS)))

    assert Counter(statuses) == {200: WRITERS}
    stored = await (await client.get(path, headers=headers)).json()
    written = {f"C{writer:04d}" for writer in range(WRITERS)}
    (connection,) = stored["data"]["connections"]
    assert connection["channel_id"] in written
    assert stored["data"]["token"] == {"access_token": "xoxb-kept"}  # no write undid another
    # Every PUT was applied once, one after another: the first write made version 1.
    version = await _version_of(
        client,
        channel_data,
        channel_data.c.channel_id == world.slack.id,
        channel_data.c.recipient_id == "acme",
    )
    assert version == 1 + WRITERS


async def test_concurrent_identifies_of_one_user_all_succeed_and_every_property_is_kept(
    client: TestClient, world: World
) -> None:
    headers = world.secret_headers()

    async def identify(writer: int) -> int:
        response = await client.put(
            "/v1/users/contended", json={f"writer_{writer:03d}": writer}, headers=headers
        )
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(identify(writer) for writer in range(WRITERS)))

    assert Counter(statuses) == {200: WRITERS}
    user = await (await client.get("/v1/users/contended", headers=headers)).json()
    assert {key: user[key] for key in user if key.startswith("writer_")} == {
        f"writer_{writer:03d}": writer for writer in range(WRITERS)
    }
    version = await _version_of(client, users, users.c.user_id == "contended")
    assert version == WRITERS


async def test_concurrent_channel_data_puts_that_create_a_user_all_succeed(
    client: TestClient, world: World
) -> None:
    """The first PUT for a user creates it (as Knock's does): a hundred race to create it."""
    path = f"/v1/users/racer/channel_data/{world.slack.id}"
    headers = world.secret_headers()

    async def put(writer: int) -> int:
        data = {"connections": [{"channel_id": f"C{writer:04d}"}]}
        response = await client.put(path, json={"data": data}, headers=headers)
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(put(writer) for writer in range(WRITERS)))

    assert Counter(statuses) == {200: WRITERS}
    assert (await client.get("/v1/users/racer", headers=headers)).status == 200
    stored = await (await client.get(path, headers=headers)).json()
    assert stored["data"]["connections"][0]["channel_id"].startswith("C")


async def test_writers_queue_on_the_write_lock_and_apply_their_change_once(
    gateway: Gateway,
) -> None:
    """No optimistic retry: each change sees the previous one's result, so none is re-run."""
    world = await seed_world(gateway)
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    recipient = Recipient.object("counters", "c1")
    await gateway.channel_data.update(
        environment.id, world.slack.id, recipient, lambda _: {"connections": []}
    )
    calls: Counter[int] = Counter()

    def increment(writer: int) -> Any:
        def change(stored: dict[str, Any] | None) -> dict[str, Any]:
            calls[writer] += 1
            assert stored is not None
            return {"connections": [*stored["connections"], {"channel_id": f"C{writer}"}]}

        return change

    await asyncio.gather(
        *(
            gateway.channel_data.update(environment.id, world.slack.id, recipient, increment(w))
            for w in range(WRITERS)
        )
    )

    assert calls == dict.fromkeys(range(WRITERS), 1)
    stored = await gateway.channel_data.get(environment.id, world.slack.id, recipient)
    assert stored is not None
    assert len(stored["connections"]) == WRITERS


async def test_identifies_queue_on_the_write_lock_and_apply_their_change_once(
    gateway: Gateway,
) -> None:
    world = await seed_world(gateway)
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    await gateway.users.merge(environment.id, "counted", lambda _: {"count": 0})
    calls: Counter[int] = Counter()

    def increment(writer: int) -> Any:
        def change(stored: dict[str, Any] | None) -> dict[str, Any]:
            calls[writer] += 1
            assert stored is not None
            return {"count": stored["count"] + 1}

        return change

    await asyncio.gather(
        *(gateway.users.merge(environment.id, "counted", increment(w)) for w in range(WRITERS))
    )

    assert calls == dict.fromkeys(range(WRITERS), 1)
    user = await gateway.users.get(environment.id, "counted")
    assert user is not None
    assert user.properties["count"] == WRITERS


def test_losing_the_create_race_past_every_retry_is_a_409_never_a_5xx() -> None:
    response = error_response(ConcurrentUpdateError())
    assert response.status == 409
    assert response.headers["Retry-After"] == "1"
    assert response.text is not None
    assert json.loads(response.text)["code"] == "conflict"
