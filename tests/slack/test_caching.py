"""Listing cache and coordination through the whole gateway, with real Redis."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY, LISTINGS
from tests.fakes.slack import FakeSlack
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.slack.conftest import TEAM
from tests.slack.support import TENANT, install_token, list_channels
from tests.support import World, free_port, seed_world, serve


@pytest.fixture
async def redis_settings(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack, redis_prefix: str
) -> Settings:
    return make_settings(
        SLACK_API_URL=fake_slack.api_url,
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=redis_prefix,
    )


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    import uuid

    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


async def test_two_replicas_make_one_upstream_call_per_page(
    aiohttp_client: Any, redis_settings: Settings, fake_slack: FakeSlack
) -> None:
    replicas = [await serve(aiohttp_client, create_app(redis_settings)) for _ in range(2)]
    world = await seed_world(replicas[0].app[GATEWAY])
    fake_slack.register_app(world.slack.client_id, world.slack.client_secret.reveal())
    fake_slack.add_workspace(TEAM, 450)
    await install_token(replicas[0], world, fake_slack.mint_token(TEAM))

    first = await asyncio.gather(
        *(list_channels(replicas[i % 2], world, limit="200") for i in range(100))
    )
    assert [response.status for response in first] == [200] * 100
    cursor = (await first[0].json())["next_cursor"]
    second = await asyncio.gather(
        *(list_channels(replicas[i % 2], world, limit="200", cursor=cursor) for i in range(100))
    )
    assert [response.status for response in second] == [200] * 100
    calls = fake_slack.calls_to("conversations.list")
    assert len(calls) == 2, [call.params.get("cursor") for call in calls]  # one per page
    assert {await r.text() for r in second} == {await second[0].text()}


async def test_credential_changes_invalidate_at_once(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    token = fake_slack.mint_token(TEAM)
    await install_token(client, world, token)
    assert (await list_channels(client, world)).status == 200
    assert (await list_channels(client, world)).status == 200
    assert len(fake_slack.calls_to("conversations.list")) == 1  # second one was cached

    revoked = await client.put(
        f"/v1/providers/slack/{world.slack.id}/revoke_access",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert revoked.status == 200
    assert (await list_channels(client, world)).status == 403  # never a cached listing after revoke

    await install_token(client, world, fake_slack.mint_token(TEAM))
    checked = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert await checked.json() == {"connection": {"ok": True}}  # auth_check is never cached
    assert (await list_channels(client, world)).status == 200
    assert len(fake_slack.calls_to("conversations.list")) == 2


async def test_a_write_on_one_replica_stops_the_others_cached_listing(
    aiohttp_client: Any, redis_settings: Settings, fake_slack: FakeSlack
) -> None:
    """Replica B serves its cached listing from memory (no Redis round trip); a revoke on
    replica A reaches B over Redis pub/sub, and B never answers 200 again after its 403."""
    replicas = [await serve(aiohttp_client, create_app(redis_settings)) for _ in range(2)]
    for replica in replicas:
        generations = replica.app[LISTINGS].generations
        for _ in range(1000):
            if generations.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert generations.subscriptions == 1
    writer, reader = replicas
    world = await seed_world(writer.app[GATEWAY])
    fake_slack.register_app(world.slack.client_id, world.slack.client_secret.reveal())
    fake_slack.add_workspace(TEAM, 20)
    await install_token(writer, world, fake_slack.mint_token(TEAM))
    for _ in range(3):
        assert (await list_channels(reader, world)).status == 200
    assert len(fake_slack.calls_to("conversations.list")) == 1

    revoked = await writer.put(
        f"/v1/providers/slack/{world.slack.id}/revoke_access",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert revoked.status == 200
    statuses = [(await list_channels(reader, world)).status]
    while statuses[-1] != 403:
        assert len(statuses) < 500, statuses  # about 5 s
        await asyncio.sleep(0.01)
        statuses.append((await list_channels(reader, world)).status)
    for _ in range(5):
        statuses.append((await list_channels(reader, world)).status)
    assert statuses[statuses.index(403) :] == [403] * (len(statuses) - statuses.index(403))
    assert len(fake_slack.calls_to("conversations.list")) == 1


@pytest.fixture
def private_redis() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """A redis-server of the test's own on a free port, which the test may kill and restart."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/ensure-services needs it)")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        processes.append(process)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        return process

    start.port = port  # type: ignore[attr-defined]
    yield start
    for process in processes:
        process.kill()
        process.wait()


async def test_redis_dying_mid_load_fails_nothing_and_caching_resumes(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    private_redis: Any,
) -> None:
    server = private_redis()
    settings = make_settings(
        SLACK_API_URL=fake_slack.api_url,
        GATEWAY_REDIS_URL=f"redis://127.0.0.1:{private_redis.port}/0",
    )
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    fake_slack.register_app(world.slack.client_id, world.slack.client_secret.reveal())
    await install_token(client, world, fake_slack.mint_token(TEAM))

    statuses: list[int] = []

    async def load(rounds: int) -> None:
        for _ in range(rounds):
            responses = await asyncio.gather(*(list_channels(client, world) for _ in range(10)))
            statuses.extend(response.status for response in responses)

    await load(3)
    during = asyncio.ensure_future(load(8))  # requests in flight while Redis dies
    await asyncio.sleep(0.05)
    server.kill()
    await asyncio.to_thread(server.wait)
    await during  # Redis gone: in-process fallback and straight upstream, never a 5xx
    ready = await (await client.get("/readyz")).json()
    assert ready["status"] == "degraded"
    assert ready["checks"]["redis"] == "degraded"

    private_redis()  # back on the same port
    for _ in range(100):  # readiness notices the recovery, and ends the in-process spell
        if (await (await client.get("/readyz")).json())["checks"]["redis"] == "ok":
            break
        await asyncio.sleep(0.05)
    await load(1)
    calls_before = len(fake_slack.calls_to("conversations.list"))
    await load(3)
    assert len(fake_slack.calls_to("conversations.list")) == calls_before  # cached in Redis again
    assert (await (await client.get("/readyz")).json())["checks"]["redis"] == "ok"
    assert set(statuses) == {200}
