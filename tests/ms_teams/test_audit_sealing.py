"""Entra tenant ids are encrypted in the audit log, as in the channel data that holds them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import text

from provider_gateway.config import Settings
from provider_gateway.gateway import open_gateway
from provider_gateway.storage.rotation import rotate_encryption_key
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import KEY_A, KEY_B
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import connect_tenant
from tests.support import World

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


async def _revoke_entries(client: TestClient, world: World) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/audit_events", params={"action": "revoke"}, headers=world.secret_headers()
    )
    assert response.status == 200
    entries: list[dict[str, Any]] = (await response.json())["entries"]
    return entries


async def test_a_revoke_audits_the_tenant_id_sealed(
    client: TestClient,
    world: World,
    fake_microsoft: FakeMicrosoft,
    make_settings: Callable[..., Settings],
) -> None:
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    await connect_tenant(client, world, TENANT_ID)
    revoked = await client.put(
        f"/v1/providers/ms-teams/{world.teams.id}/revoke_access",
        params={"ms_teams_tenant_object": TENANT},
        headers=world.secret_headers(),
    )
    assert revoked.status == 200

    async with client.app[GATEWAY].engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM audit_events"))).all()
    stored = json.dumps([[str(value) for value in row] for row in rows])
    assert TENANT_ID not in stored
    assert TENANT_ID.replace("-", "") not in stored

    [entry] = await _revoke_entries(client, world)
    assert entry["details"] == {"provider": "ms-teams", "ms_teams_tenant_id": TENANT_ID}

    # Sealed details follow key rotation like every other ciphertext.
    rotated = make_settings(GATEWAY_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")
    async with open_gateway(rotated, run_migrations=False) as gateway:
        report = await rotate_encryption_key(gateway.engine, gateway.key_ring, actor="test")
        assert report.rotated >= 1
    only_new = make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B)
    async with open_gateway(only_new, run_migrations=False) as gateway:
        events = await gateway.audit.recent()
    revoke = next(event for event in events if event.entry.action == "revoke")
    assert revoke.entry.revealed()["ms_teams_tenant_id"] == TENANT_ID
