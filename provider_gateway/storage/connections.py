"""Who is connected through a channel, and removing a channel with its channel data.

A tenant (an object, usually in `$tenants`) is connected while its channel data holds the
install's credential: a Slack `token` or a Teams `ms_teams_tenant_id`. Channel data is
encrypted whole, so both questions decrypt every record of the channel: an operator's
command, not a request path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.crypto import KeyRing, UndecryptableError
from provider_gateway.models import CREDENTIAL_KEYS, Channel
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import as_utc
from provider_gateway.storage.schema import audit_events, channel_data, channels


@dataclass(frozen=True)
class Connection:
    environment_id: str
    collection: str
    object_id: str
    credential: Any  # Slack's token record or the Teams tenant id: never shown as it is
    connected_at: datetime  # the last install, else when the record last changed


class ChannelInUse(Exception):
    """Tenants are still connected; `count` of them."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} connected")
        self.count = count


@dataclass(frozen=True)
class Removal:
    channel_data_removed: int
    connected: int


class Connections:
    def __init__(self, engine: AsyncEngine, key_ring: KeyRing) -> None:
        self._engine = engine
        self._key_ring = key_ring

    async def of_channel(self, channel: Channel, *, limit: int | None = None) -> list[Connection]:
        """Connected tenants in the order they first wrote data (at most `limit`)."""
        query = (
            select(
                channel_data.c.environment_id,
                channel_data.c.collection,
                channel_data.c.recipient_id,
                channel_data.c.payload_encrypted,
                channel_data.c.updated_at,
            )
            .where(channel_data.c.channel_id == channel.id)
            .where(channel_data.c.recipient_kind == "object")
            .order_by(channel_data.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            installs = await _last_installs(connection, channel.id)
        found = []
        for environment_id, collection, object_id, payload, updated_at in rows:
            credential = self._credential(channel, payload)
            if credential is not None:
                target = f"objects/{collection}/{object_id}"
                connected_at = installs.get((environment_id, target), as_utc(updated_at))
                found.append(
                    Connection(environment_id, collection, object_id, credential, connected_at)
                )
                if limit is not None and len(found) >= limit:
                    break
        return found

    async def remove_channel(self, channel: Channel, *, force: bool, actor: str) -> Removal:
        """Delete the channel and its channel data in one transaction; unless `force`, undo it
        when a deleted record held a credential (ChannelInUse). Counting what was deleted,
        rather than what was there before, leaves no gap for an install to slip through."""
        async with self._engine.begin() as connection:
            deleted = (
                await connection.execute(
                    delete(channel_data)
                    .where(channel_data.c.channel_id == channel.id)
                    .returning(channel_data.c.recipient_kind, channel_data.c.payload_encrypted)
                )
            ).all()
            connected = sum(
                1
                for kind, payload in deleted
                if kind == "object" and self._credential(channel, payload, unreadable=True)
            )
            if connected and not force:
                raise ChannelInUse(connected)  # leaving the block rolls the deletion back
            await connection.execute(delete(channels).where(channels.c.id == channel.id))
            await record(
                connection,
                AuditEntry(
                    "channel.removed",
                    actor,
                    environment_id=channel.environment_id,
                    channel_id=channel.id,
                    details={
                        "provider": channel.provider,
                        "client_id": channel.client_id,
                        "channel_data_removed": len(deleted),
                        "connected": connected,
                        "forced": force,
                    },
                ),
            )
        return Removal(len(deleted), connected)

    def _credential(self, channel: Channel, payload: str, *, unreadable: Any = None) -> Any:
        """The install's credential in a record, or None; `unreadable` for a record no key
        decrypts (removal counts those as connected: it cannot tell)."""
        try:
            data = json.loads(self._key_ring.decrypt(payload))
        except UndecryptableError:
            return unreadable
        return data.get(CREDENTIAL_KEYS[channel.provider]) or None


async def _last_installs(
    connection: AsyncConnection, channel_id: str
) -> dict[tuple[str | None, str | None], datetime]:
    query = (
        select(
            audit_events.c.environment_id,
            audit_events.c.target,
            func.max(audit_events.c.occurred_at),
        )
        .where(audit_events.c.channel_id == channel_id, audit_events.c.action == "install")
        .group_by(audit_events.c.environment_id, audit_events.c.target)
    )
    return {
        (environment_id, target): as_utc(occurred_at)
        for environment_id, target, occurred_at in await connection.execute(query)
    }
