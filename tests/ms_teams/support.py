"""Helpers for the Teams tests."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.support import World


async def connect_tenant(
    client: TestClient, world: World, tenant_id: str, tenant: str = "acme"
) -> None:
    """Store a tenant's Entra tenant id the way an operator may: through the channel data API."""
    response = await client.put(
        f"/v1/objects/$tenants/{tenant}/channel_data/{world.teams.id}",
        json={"data": {"ms_teams_tenant_id": tenant_id, "connections": []}},
        headers=world.secret_headers(),
    )
    assert response.status == 200, await response.text()
