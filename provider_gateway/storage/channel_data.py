"""Channel data per (environment, channel, recipient), encrypted whole at this boundary."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.crypto import KeyRing
from provider_gateway.models import Recipient
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.blind_index import BlindIndex
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.contention import (
    MAX_ATTEMPTS,
    ConcurrentUpdateError,
    back_off,
    lock_for_write,
)
from provider_gateway.storage.schema import channel_data

ChannelDataPayload = dict[str, Any]
# Given the stored data (None: none yet), return the data to store (None: remove it).
Change = Callable[[ChannelDataPayload | None], ChannelDataPayload | None]
ChangeListener = Callable[[str, str, Recipient], Awaitable[None]]


class ChannelDataStore:
    def __init__(self, engine: AsyncEngine, key_ring: KeyRing) -> None:
        self._engine = engine
        self._key_ring = key_ring
        self._index = BlindIndex(key_ring)
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call `listener(environment_id, channel_id, recipient)` after every committed write
        (installs, refreshes, revokes and API writes all come through here)."""
        self._listeners.append(listener)

    async def get(
        self, environment_id: str, channel_id: str, recipient: Recipient
    ) -> ChannelDataPayload | None:
        async with self._engine.connect() as connection:
            row = await self._row(connection, environment_id, channel_id, recipient)
        return self._decrypt(row["payload_encrypted"]) if row else None

    async def for_channel(self, channel_id: str) -> list[tuple[str, Recipient, ChannelDataPayload]]:
        """Every recipient's data on a channel, in every environment."""
        return await self._decrypted(channel_data.c.channel_id == channel_id)

    async def for_slack_install(
        self, channel_id: str, *, team_id: object, enterprise_id: object
    ) -> list[tuple[str, Recipient, ChannelDataPayload]]:
        """The data on a channel whose Slack token may be this workspace's (or org's), found
        by blind index: no other tenant's row is read or decrypted. Callers check the match."""
        return await self._decrypted(
            channel_data.c.channel_id == channel_id,
            self._index.matching(team_id, enterprise_id),
        )

    async def _decrypted(
        self, *conditions: ColumnElement[bool]
    ) -> list[tuple[str, Recipient, ChannelDataPayload]]:
        query = select(
            channel_data.c.environment_id,
            channel_data.c.recipient_kind,
            channel_data.c.collection,
            channel_data.c.recipient_id,
            channel_data.c.payload_encrypted,
        ).where(*conditions)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            (env, Recipient(kind, recipient_id, collection), self._decrypt(payload))
            for env, kind, collection, recipient_id, payload in rows
        ]

    async def update(
        self,
        environment_id: str,
        channel_id: str,
        recipient: Recipient,
        change: Change,
        audit: Callable[[ChannelDataPayload | None, ChannelDataPayload | None], AuditEntry | None]
        | None = None,
    ) -> ChannelDataPayload | None:
        """Apply `change` atomically, under the row's write lock (see storage.contention);
        returns the new data. Concurrent callers each see the previous one's result.

        `audit(old, new)` may return an entry, written in the same transaction as the change.
        """
        for attempt in range(MAX_ATTEMPTS):
            async with self._engine.begin() as connection:
                await lock_for_write(connection)
                row = await self._row(connection, environment_id, channel_id, recipient, lock=True)
                current = self._decrypt(row["payload_encrypted"]) if row else None
                new = change(None if current is None else json.loads(json.dumps(current)))
                try:
                    applied = await self._write(
                        connection, environment_id, channel_id, recipient, row, new
                    )
                except IntegrityError:
                    applied = False  # someone inserted first; retry as an update
                if not applied:
                    await connection.rollback()
                    await back_off(attempt)
                    continue
                entry = audit(current, new) if audit else None
                if entry is not None:
                    await record(connection, entry, self._key_ring)
            if new != current:
                for listener in self._listeners:
                    await listener(environment_id, channel_id, recipient)
            return new
        raise ConcurrentUpdateError(
            f"Channel data of {recipient.describe()} is being changed by other requests; retry"
        )

    async def _write(
        self,
        connection: AsyncConnection,
        environment_id: str,
        channel_id: str,
        recipient: Recipient,
        row: Any,
        new: ChannelDataPayload | None,
    ) -> bool:
        now = utcnow()
        if row is None and new is None:
            return True
        if row is None:
            await connection.execute(
                channel_data.insert().values(
                    environment_id=environment_id,
                    channel_id=channel_id,
                    recipient_kind=recipient.kind,
                    collection=recipient.collection,
                    recipient_id=recipient.id,
                    payload_encrypted=self._encrypt(new),
                    version=1,
                    created_at=now,
                    updated_at=now,
                    **self._index.columns(new),
                )
            )
            return True
        same_version = and_(
            channel_data.c.id == row["id"], channel_data.c.version == row["version"]
        )
        if new is None:
            result = await connection.execute(delete(channel_data).where(same_version))
        else:
            result = await connection.execute(
                update(channel_data)
                .where(same_version)
                .values(
                    payload_encrypted=self._encrypt(new),
                    version=row["version"] + 1,
                    updated_at=now,
                    **self._index.columns(new),
                )
            )
        return result.rowcount == 1

    @staticmethod
    async def _row(
        connection: AsyncConnection,
        environment_id: str,
        channel_id: str,
        recipient: Recipient,
        *,
        lock: bool = False,
    ) -> Any:
        query = select(
            channel_data.c.id, channel_data.c.version, channel_data.c.payload_encrypted
        ).where(
            channel_data.c.environment_id == environment_id,
            channel_data.c.channel_id == channel_id,
            channel_data.c.recipient_kind == recipient.kind,
            channel_data.c.collection == recipient.collection,
            channel_data.c.recipient_id == recipient.id,
        )
        if lock:
            query = query.with_for_update()
        return (await connection.execute(query)).mappings().first()

    def _encrypt(self, payload: ChannelDataPayload | None) -> str:
        serialized = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        return self._key_ring.encrypt(serialized.encode("utf-8"))

    def _decrypt(self, token: str) -> ChannelDataPayload:
        payload: ChannelDataPayload = json.loads(self._key_ring.decrypt(token))
        return payload
