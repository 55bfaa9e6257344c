"""Helpers for the Slack tests."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support import World

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})  # the JSON-string form


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


def list_channels(client: TestClient, world: World, tenant: str = TENANT, **options: str) -> Any:
    """`GET …/channels` as a secret-key caller, `options` in the bracket form."""
    params = {
        "access_token_object": tenant,
        **{f"query_options[{k}]": v for k, v in options.items()},
    }
    return client.get(
        f"/v1/providers/slack/{world.slack.id}/channels",
        params=params,
        headers=world.secret_headers(),
    )
