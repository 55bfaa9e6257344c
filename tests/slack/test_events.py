"""Slack Events API: signed app_uninstalled / tokens_revoked remove exactly the matching tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from sqlalchemy import select

from provider_gateway.config import Secret
from provider_gateway.crypto import KeyRing
from provider_gateway.models import Channel, Recipient
from provider_gateway.storage.blind_index import BlindIndex
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.schema import channel_data
from provider_gateway.web.appkeys import GATEWAY
from tests.support import World

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/json",
    }


def event(kind: str, team_id: str | None = "T0001", **extra: Any) -> bytes:
    payload: dict[str, Any] = {
        "type": "event_callback",
        "api_app_id": "A0EVENTS",
        "team_id": team_id,
        "event": {"type": kind, **extra},
        "event_id": "Ev0001",
    }
    return json.dumps(payload).encode()


@pytest.fixture
async def events_channel(client: TestClient, world: World) -> Channel:
    return await client.app[GATEWAY].channels.add(
        provider="slack",
        client_id="events.app",
        client_secret=Secret("events-client-secret"),
        app_id="A0EVENTS",
        environment_id=world.slack.environment_id,
        signing_secret=Secret(SIGNING_SECRET),
        actor="test",
    )


async def _install(
    client: TestClient, world: World, channel: Channel, tenant: str, **token: str
) -> None:
    response = await client.put(
        f"/v1/objects/$tenants/{tenant}/channel_data/{channel.id}",
        json={
            "data": {
                "token": {"access_token": f"xoxb-{tenant}", "bot_user_id": "U0BOT", **token},
                "connections": [{"channel_id": "C1"}],
            }
        },
        headers=world.secret_headers(),
    )
    assert response.status == 200


async def _data(
    client: TestClient, world: World, channel: Channel, tenant: str
) -> dict[str, Any] | None:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    return await gateway.channel_data.get(
        environment.id, channel.id, Recipient.object("$tenants", tenant)
    )


async def _post(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    return await client.post("/providers/slack/events", data=body, headers=headers)


async def test_url_verification(client: TestClient, events_channel: Channel) -> None:
    body = json.dumps(
        {
            "type": "url_verification",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        }
    ).encode()
    response = await _post(client, body, sign(body, int(time.time())))
    assert response.status == 200
    assert (await response.json())["challenge"].startswith("3eZbrw1a")


async def test_app_uninstalled_removes_that_workspaces_tokens_only(
    client: TestClient, world: World, events_channel: Channel
) -> None:
    await _install(client, world, events_channel, "acme", team_id="T0001")
    await _install(client, world, events_channel, "beta", team_id="T0001")
    await _install(client, world, events_channel, "gamma", team_id="T0002")
    body = event("app_uninstalled")
    for _ in range(2):  # Slack retries; the second delivery changes nothing
        response = await _post(
            client, body, {**sign(body, int(time.time())), "X-Slack-Retry-Num": "1"}
        )
        assert response.status == 200
    for tenant in ("acme", "beta"):
        assert await _data(client, world, events_channel, tenant) == {
            "connections": [{"channel_id": "C1"}]
        }
    gamma = await _data(client, world, events_channel, "gamma")
    assert gamma is not None
    assert gamma["token"]["access_token"] == "xoxb-gamma"
    events = await client.app[GATEWAY].audit.recent()
    revokes = [e for e in events if e.entry.action == "revoke"]
    assert {e.entry.target for e in revokes} == {"objects/$tenants/acme", "objects/$tenants/beta"}
    assert all(e.entry.actor == "slack:app_uninstalled" for e in revokes)


async def test_tokens_revoked_removes_only_the_named_bots(
    client: TestClient, world: World, events_channel: Channel
) -> None:
    await _install(client, world, events_channel, "acme", team_id="T0001", bot_user_id="U0BOT")
    await _install(client, world, events_channel, "beta", team_id="T0001", bot_user_id="U0OTHER")
    body = event("tokens_revoked", tokens={"oauth": ["U0HUMAN"], "bot": ["U0BOT"]})
    assert (await _post(client, body, sign(body, int(time.time())))).status == 200
    assert "token" not in (await _data(client, world, events_channel, "acme") or {})
    assert "token" in (await _data(client, world, events_channel, "beta") or {})


async def test_an_org_uninstall_removes_the_org_token(
    client: TestClient, world: World, events_channel: Channel
) -> None:
    await _install(client, world, events_channel, "acme", enterprise_id="E0GRID")
    response = await client.put(  # mark it org-wide, as an Enterprise Grid install stores it
        f"/v1/objects/$tenants/acme/channel_data/{events_channel.id}",
        json={
            "data": {
                "token": {
                    "access_token": "xoxb-acme",
                    "enterprise_id": "E0GRID",
                    "is_enterprise_install": True,
                    "bot_user_id": "U0BOT",
                }
            }
        },
        headers=world.secret_headers(),
    )
    assert response.status == 200
    body = event("app_uninstalled", team_id=None, enterprise_id="E0GRID")
    body = json.dumps({**json.loads(body), "enterprise_id": "E0GRID"}).encode()
    assert (await _post(client, body, sign(body, int(time.time())))).status == 200
    assert "token" not in (await _data(client, world, events_channel, "acme") or {})


@pytest.mark.parametrize(
    "tamper",
    ["no_signature", "wrong_secret", "old_timestamp", "changed_body"],
)
async def test_unverified_requests_are_401_and_change_nothing(
    client: TestClient, world: World, events_channel: Channel, tamper: str
) -> None:
    await _install(client, world, events_channel, "acme", team_id="T0001")
    body, now = event("app_uninstalled"), int(time.time())
    headers = {
        "no_signature": {"Content-Type": "application/json"},
        "wrong_secret": sign(body, now, secret="not-the-signing-secret"),
        "old_timestamp": sign(body, now - 6 * 60),
        "changed_body": sign(event("app_uninstalled", team_id="T0002"), now),
    }[tamper]
    response = await _post(client, body, headers)
    assert response.status == 401
    assert (await response.json())["code"] == "invalid_signature"
    stored = await _data(client, world, events_channel, "acme")
    assert stored is not None
    assert stored["token"]["access_token"] == "xoxb-acme"


async def test_an_event_never_reads_other_workspaces_rows(
    client: TestClient, world: World, events_channel: Channel
) -> None:
    """Other tenants' rows on the channel hold ciphertext no key of the ring opens: reading
    any of them would fail the event, so a 200 that removes the right token proves the
    event found its rows by the blind index alone."""
    await _install(client, world, events_channel, "acme", team_id="T0001")
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    foreign = KeyRing((Secret(Fernet.generate_key().decode()),))
    index = BlindIndex(gateway.key_ring)
    async with gateway.engine.begin() as connection:
        for number in range(20):
            payload = {"token": {"access_token": f"xoxb-{number}", "team_id": f"T9{number:03d}"}}
            await connection.execute(
                channel_data.insert().values(
                    environment_id=environment.id,
                    channel_id=events_channel.id,
                    recipient_kind="object",
                    collection="$tenants",
                    recipient_id=f"other-{number}",
                    payload_encrypted=foreign.encrypt(json.dumps(payload).encode()),
                    version=1,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                    **index.columns(payload),
                )
            )
    body = event("app_uninstalled")
    response = await _post(client, body, sign(body, int(time.time())))
    assert response.status == 200
    assert await _data(client, world, events_channel, "acme") == {
        "connections": [{"channel_id": "C1"}]
    }
    async with gateway.engine.connect() as connection:
        acme_index = (
            await connection.execute(
                select(channel_data.c.slack_team_hmac).where(channel_data.c.recipient_id == "acme")
            )
        ).scalar_one()
    assert acme_index is None  # no token left, nothing indexed
