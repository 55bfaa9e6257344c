"""Users per environment: properties encrypted whole at this boundary, listed in insertion order."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.crypto import KeyRing
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import as_utc, utcnow
from provider_gateway.storage.contention import (
    MAX_ATTEMPTS,
    ConcurrentUpdateError,
    back_off,
    lock_for_write,
)
from provider_gateway.storage.schema import channel_data, channels, users

Properties = dict[str, Any]
# Given the stored properties (None: no such user yet), return the properties to store.
Change = Callable[[Properties | None], Properties]


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    properties: Properties
    created_at: datetime  # when this service first stored the user
    updated_at: datetime
    position: int  # insertion order, what list cursors point at


@dataclass(frozen=True)
class UserPage:
    users: list[StoredUser]
    has_after: bool  # more users follow the last one, in the listing's order
    has_before: bool  # users precede the first one


class UserStore:
    def __init__(self, engine: AsyncEngine, key_ring: KeyRing) -> None:
        self._engine = engine
        self._key_ring = key_ring

    async def get(self, environment_id: str, user_id: str) -> StoredUser | None:
        async with self._engine.connect() as connection:
            row = await self._row(connection, environment_id, user_id)
        return self._user(row) if row else None

    async def merge(self, environment_id: str, user_id: str, change: Change) -> StoredUser:
        """Create the user or apply `change` to its properties, atomically, under the row's
        write lock (see storage.contention)."""
        for attempt in range(MAX_ATTEMPTS):
            async with self._engine.begin() as connection:
                await lock_for_write(connection)
                row = await self._row(connection, environment_id, user_id, lock=True)
                current = self._decrypt(row["properties_encrypted"]) if row else None
                new = change(None if current is None else json.loads(json.dumps(current)))
                if row is not None and new == current:
                    return self._user(row)  # nothing changes: no write, updated_at stays
                try:
                    applied = await self._write(connection, environment_id, user_id, row, new)
                except IntegrityError:
                    applied = False  # someone created the user first; retry as an update
                if not applied:
                    await connection.rollback()
                    await back_off(attempt)
                    continue
                stored = await self._row(connection, environment_id, user_id)
            return self._user(stored)
        raise ConcurrentUpdateError(f"User {user_id} is being changed by other requests; retry")

    async def ensure(self, environment_id: str, user_id: str) -> None:
        """Create the user, without properties, unless it exists (which changes nothing)."""
        try:
            async with self._engine.begin() as connection:
                if await self._row(connection, environment_id, user_id) is None:
                    await self._write(connection, environment_id, user_id, None, {})
        except IntegrityError:
            pass  # created meanwhile by another request: exists, as wanted

    async def delete(
        self,
        environment_id: str,
        user_id: str,
        audit: Callable[[bool, int], AuditEntry | None],
    ) -> bool:
        """Remove the user and its channel data on every channel, in one transaction.

        `audit(existed, channel_data_removed)` may return an entry written with the change.
        Only tenant objects back provider listings, so no listing cache holds a user's data.
        """
        async with self._engine.begin() as connection:
            channel_ids = (await connection.execute(select(channels.c.id))).scalars().all()
            removed = 0
            if channel_ids:
                # Every column of the unique index, so each channel's row is found by index.
                result = await connection.execute(
                    delete(channel_data).where(
                        channel_data.c.environment_id == environment_id,
                        channel_data.c.channel_id.in_(channel_ids),
                        channel_data.c.recipient_kind == "user",
                        channel_data.c.collection == "",
                        channel_data.c.recipient_id == user_id,
                    )
                )
                removed = result.rowcount
            result = await connection.execute(
                delete(users).where(
                    users.c.environment_id == environment_id, users.c.user_id == user_id
                )
            )
            existed = result.rowcount == 1
            entry = audit(existed, removed)
            if entry is not None:
                await record(connection, entry)
        return existed or removed > 0

    async def page(
        self,
        environment_id: str,
        *,
        limit: int,
        descending: bool = False,
        after: int | None = None,
        before: int | None = None,
    ) -> UserPage:
        """Keyset pagination on insertion order (oldest first unless `descending`):
        the users that follow position `after`, or those that precede position `before`."""

        def later(position: int) -> ColumnElement[bool]:
            return users.c.id < position if descending else users.c.id > position

        def earlier(position: int) -> ColumnElement[bool]:
            return users.c.id > position if descending else users.c.id < position

        backwards = before is not None
        # Walking backwards reads the listing in reverse order, then turns the page round.
        newest_first = descending != backwards
        query = (
            select(users)
            .where(users.c.environment_id == environment_id)
            .order_by(users.c.id.desc() if newest_first else users.c.id.asc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.where(earlier(before))
        elif after is not None:
            query = query.where(later(after))
        async with self._engine.connect() as connection:
            rows = list((await connection.execute(query)).mappings().all())
            more, rows = len(rows) > limit, rows[:limit]
            if not rows:
                return UserPage([], has_after=False, has_before=False)
            if backwards:
                rows.reverse()
                beyond = later(rows[-1]["id"])
            else:
                beyond = earlier(rows[0]["id"])
            exists = select(users.c.id).where(users.c.environment_id == environment_id, beyond)
            other_side = (await connection.execute(exists.limit(1))).first() is not None
        found = [self._user(row) for row in rows]
        if backwards:
            return UserPage(found, has_after=other_side, has_before=more)
        return UserPage(found, has_after=more, has_before=other_side)

    async def _write(
        self,
        connection: AsyncConnection,
        environment_id: str,
        user_id: str,
        row: Any,
        new: Properties,
    ) -> bool:
        now = utcnow()
        if row is None:
            await connection.execute(
                users.insert().values(
                    environment_id=environment_id,
                    user_id=user_id,
                    properties_encrypted=self._encrypt(new),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            return True
        same_version = and_(users.c.id == row["id"], users.c.version == row["version"])
        result = await connection.execute(
            update(users)
            .where(same_version)
            .values(
                properties_encrypted=self._encrypt(new),
                version=row["version"] + 1,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    @staticmethod
    async def _row(
        connection: AsyncConnection, environment_id: str, user_id: str, *, lock: bool = False
    ) -> Any:
        query = select(users).where(
            users.c.environment_id == environment_id, users.c.user_id == user_id
        )
        if lock:
            # PostgreSQL: concurrent identifies of one user queue here instead of losing the
            # compare-and-swap below (SQLite ignores it; it has one writer at a time anyway).
            query = query.with_for_update()
        return (await connection.execute(query)).mappings().first()

    def _user(self, row: Any) -> StoredUser:
        return StoredUser(
            user_id=row["user_id"],
            properties=self._decrypt(row["properties_encrypted"]),
            created_at=as_utc(row["created_at"]),
            updated_at=as_utc(row["updated_at"]),
            position=row["id"],
        )

    def _encrypt(self, properties: Properties) -> str:
        serialized = json.dumps(properties, separators=(",", ":"), sort_keys=True)
        return self._key_ring.encrypt(serialized.encode("utf-8"))

    def _decrypt(self, token: str) -> Properties:
        properties: Properties = json.loads(self._key_ring.decrypt(token))
        return properties
