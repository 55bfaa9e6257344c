"""Helpers for the Slack tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.support import World


async def install_token(
    client: TestClient, world: World, token: str, tenant: str = "acme", **extra: Any
) -> None:
    """Store a tenant's token the way an operator may: through the channel data API."""
    response = await client.put(
        f"/v1/objects/$tenants/{tenant}/channel_data/{world.slack.id}",
        json={
            "data": {
                "token": {"access_token": token, **extra},
                "connections": [{"channel_id": "C1"}],
            }
        },
        headers=world.secret_headers(),
    )
    assert response.status == 200, await response.text()
