"""`tenants list --channel ID`: who is connected through a channel; never a token."""

from __future__ import annotations

import argparse
from typing import Any

from provider_gateway.commands import channel_with_id
from provider_gateway.gateway import Gateway
from provider_gateway.storage.connections import Connection, Connections

# What each provider's credential may show: identifiers, never the token itself.
_SLACK_FIELDS = ("team_id", "team_name", "enterprise_id")


async def list_connected(gateway: Gateway, args: argparse.Namespace) -> Any:
    channel = await channel_with_id(gateway, args.channel)
    names = {environment.id: environment.name for environment in await gateway.environments.all()}
    connections = await Connections(gateway.engine, gateway.key_ring).of_channel(channel)
    return [_describe(channel.provider, connection, names) for connection in connections]


def _describe(provider: str, connection: Connection, names: dict[str, str]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "collection": connection.collection,
        "object_id": connection.object_id,
        "environment": names.get(connection.environment_id),
        "connected_at": connection.connected_at.isoformat(),
    }
    if provider == "slack":
        token = connection.credential if isinstance(connection.credential, dict) else {}
        described.update({field: token.get(field) for field in _SLACK_FIELDS})
    else:
        described["ms_teams_tenant_id"] = connection.credential
    return described
