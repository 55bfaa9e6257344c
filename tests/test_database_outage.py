"""PostgreSQL stopped and started again under load: callers see 2xx or 503 with Retry-After,
never a 500; /readyz follows the database; nothing acknowledged is lost; the service recovers
without a restart (CONTRACT §4, issue 15). Each test runs a cluster of its own to take down."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import ALLOWED_ORIGIN
from tests.storage.private_postgres import PrivatePostgres
from tests.support import World, posted_message, tenant_uri

pytestmark = pytest.mark.postgres

# Trust authentication accepts it; it must never reach a log line or a response.
PASSWORD = "outage-test-" + uuid.uuid4().hex
WRITERS = 6
DOWN_SECONDS = 2.5
# Generous bounds for a loaded machine: they only end a test that is already failing.
PHASE_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def database_url(private_cluster: PrivatePostgres) -> str:
    return private_cluster.url(PASSWORD)


@dataclass
class Load:
    """What the clients saw, as counts and samples (no timing assertions)."""

    phase: str = "up"
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: dict[str, str] = field(default_factory=dict)  # path -> channel id written
    acknowledged_after_restart: int = 0
    refused_bodies: list[tuple[str | None, Any]] = field(default_factory=list)
    readiness: list[tuple[str, int, Any]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, response: ClientResponse) -> None:
        self.statuses[response.status] += 1
        body = await response.json()
        if response.status == 503:
            self.refused_bodies.append((response.headers.get("Retry-After"), body))


async def _writer(client: TestClient, world: World, writer: int, load: Load) -> None:
    """PUTs a new record each time (so an answer lost with the connection cannot blur which
    write is acknowledged), reading each acknowledged one back at once."""
    for attempt in range(1_000_000):
        if load.stop.is_set():
            return
        path = f"/v1/objects/outage/w{writer}-{attempt}/channel_data/{world.slack.id}"
        value = f"C{writer:02d}{attempt:06d}"
        data = {"connections": [{"channel_id": value}]}
        put = await client.put(path, json={"data": data}, headers=world.secret_headers())
        await load.record(put)
        if put.status != 200:
            await asyncio.sleep(0.05)  # a client honouring Retry-After would wait longer
            continue
        load.acknowledged[path] = value
        if load.phase == "restarted":
            load.acknowledged_after_restart += 1
        read = await client.get(path, headers=world.secret_headers())
        await load.record(read)


async def _readiness(client: TestClient, load: Load) -> None:
    while not load.stop.is_set():
        response = await client.get("/readyz")
        load.readiness.append((load.phase, response.status, await response.json()))
        await asyncio.sleep(0.1)


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def test_postgres_restarted_under_load_answers_only_2xx_or_503_and_loses_nothing(
    client: TestClient,
    world: World,
    private_cluster: PrivatePostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    load = Load()
    tasks = [asyncio.create_task(_writer(client, world, n, load)) for n in range(WRITERS)]
    tasks.append(asyncio.create_task(_readiness(client, load)))
    try:
        await _until(lambda: len(load.acknowledged) >= 30, "writes before the outage")

        load.phase = "down"
        await asyncio.to_thread(private_cluster.stop)
        await _until(
            lambda: any(phase == "down" and status == 503 for phase, status, _ in load.readiness),
            "/readyz to notice the outage",
        )
        await asyncio.sleep(DOWN_SECONDS)
        assert load.statuses[503] > 0  # the load did meet the outage
        await asyncio.to_thread(private_cluster.start)
        load.phase = "restarted"

        await _until(
            lambda: (
                load.acknowledged_after_restart >= 30
                and any(s == 200 for phase, s, _ in load.readiness if phase == "restarted")
            ),
            "writes and readiness after the restart",
        )
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)

    assert set(load.statuses) == {200, 503}, load.statuses
    for retry_after, body in load.refused_bodies:
        assert retry_after is not None
        assert int(retry_after) >= 1
        assert body == {
            "code": "service_unavailable",
            "message": body["message"],
            "status": 503,
            "type": "api_error",
        }
    down = [body for phase, status, body in load.readiness if phase == "down" and status == 503]
    assert down[0]["checks"]["database"] == "unavailable"
    assert down[0]["reason"].startswith("database unavailable: ")
    assert load.readiness[-1][1] == 200

    # Zero acknowledged writes lost: every 200 reads back as written, after the restart.
    for path, value in load.acknowledged.items():
        response = await client.get(path, headers=world.secret_headers())
        assert response.status == 200, path
        assert (await response.json())["data"]["connections"] == [{"channel_id": value}]

    # One warning line per refused request, no traceback, no error, no password.
    api_refusals = len(load.refused_bodies)
    outage_lines = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert len(outage_lines) == api_refusals
    assert all(record.exc_info is None for record in outage_lines)
    gateway_errors = [
        r for r in caplog.records if r.name.startswith("provider_gateway") and r.levelno >= 40
    ]
    assert gateway_errors == []
    assert PASSWORD not in caplog.text


async def test_while_the_database_is_down_every_api_route_is_503_then_recovers(
    client: TestClient, world: World, private_cluster: PrivatePostgres
) -> None:
    headers = world.secret_headers()
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    assert (await client.put(path, json={"data": {"connections": []}}, headers=headers)).ok

    tenant = {"access_token_object": json.dumps({"object_id": "acme", "collection": "$tenants"})}

    private_cluster.stop()
    for method, url, body in [
        ("GET", path, None),
        ("PUT", path, {"data": {"connections": [{"channel_id": "C1"}]}}),
        ("DELETE", path, None),
        ("PUT", "/v1/users/u-1", {"name": "Ada"}),
        ("GET", "/v1/users", None),
        ("GET", f"/v1/providers/slack/{world.slack.id}/auth_check", None),
        ("GET", f"/v1/providers/slack/{world.slack.id}/channels", None),
    ]:
        params = tenant if "/providers/" in url else {}
        response = await client.request(method, url, json=body, params=params, headers=headers)
        assert response.status == 503, (method, url)
        assert response.headers["Retry-After"] == "2"
        assert (await response.json())["code"] == "service_unavailable"
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert PASSWORD not in await ready.text()

    private_cluster.start()
    assert (await client.get(path, headers=headers)).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_oauth_callbacks_render_auth_failed_while_the_database_is_down(
    client: TestClient, world: World, private_cluster: PrivatePostgres
) -> None:
    """The popup must tell the app (postMessage) instead of showing a bare 500."""
    nonce = str(uuid.uuid4())
    slack_state = {
        "nonce": nonce,
        "redirect_url": f"{ALLOWED_ORIGIN}/settings",
        "access_token_object": {"object_id": "acme", "collection": "$tenants"},
        "channel_id": world.slack.id,
        "public_key": world.public_key,
        "user_token": world.user_token(grants={tenant_uri("acme"): {"slack/channels_read": [{}]}}),
    }
    teams_state = {
        "redirect_url": f"{ALLOWED_ORIGIN}/settings",
        "ms_teams_tenant_object": {"object_id": "acme", "collection": "$tenants"},
        "channel_id": world.teams.id,
        "public_key": world.public_key,
        "user_token": world.user_token(
            grants={tenant_uri("acme"): {"ms_teams/channels_read": [{}]}}
        ),
    }
    private_cluster.stop()

    slack = await client.get(
        "/providers/slack/authenticate",
        params={"code": "any-code", "state": json.dumps(slack_state)},
    )
    teams = await client.get(
        "/providers/ms-teams/authenticate",
        params={
            "admin_consent": "True",
            "tenant": "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d",
            "state": json.dumps(teams_state),
        },
    )

    for response, expected_nonce in ((slack, nonce), (teams, None)):
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
        assert response.content_type == "text/html"
        message = posted_message(await response.text())
        assert message["type"] == "authFailed"
        assert message["reason"] == "service_unavailable"
        assert message.get("nonce") == expected_nonce

    private_cluster.start()
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    tenant = Recipient.object("$tenants", "acme")
    assert await gateway.channel_data.get(environment.id, world.slack.id, tenant) is None


async def test_a_pool_with_no_free_connection_is_a_503_not_a_wait_forever(
    make_settings: Callable[..., Any], aiohttp_client: Callable[..., Any]
) -> None:
    from provider_gateway.app import create_app
    from tests.support import seed_world, serve

    settings = make_settings(
        GATEWAY_DATABASE_POOL_SIZE="1",
        GATEWAY_DATABASE_MAX_OVERFLOW="0",
        GATEWAY_DATABASE_POOL_TIMEOUT_SECONDS="0.5",
    )
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"

    async with client.app[GATEWAY].engine.connect():  # holds the only connection
        busy = await client.get(path, headers=world.secret_headers())
        ready = await client.get("/readyz")
    assert busy.status == 503
    assert busy.headers["Retry-After"] == "2"
    assert ready.status == 503
    assert "pool timeout" in (await ready.json())["reason"]

    assert (await client.get(path, headers=world.secret_headers())).status == 404


async def test_a_database_that_accepts_but_never_answers_is_a_503_within_the_pool_timeout(
    make_settings: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
    private_cluster: PrivatePostgres,
) -> None:
    """A host behind a dead link: connecting gives up after the pool timeout (asyncpg's own
    default is 60 s), instead of holding every request that long."""
    from provider_gateway.app import create_app
    from tests.support import seed_world, serve

    settings = make_settings(GATEWAY_DATABASE_POOL_TIMEOUT_SECONDS="1")
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    private_cluster.stop()
    held: list[asyncio.StreamWriter] = []

    def accept_and_say_nothing(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", private_cluster.port)
    try:
        async with asyncio.timeout(PHASE_TIMEOUT_SECONDS):
            response = await client.get(path, headers=world.secret_headers())
            ready = await client.get("/readyz")
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert ready.status == 503
