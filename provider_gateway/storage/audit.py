"""The audit log: who did what to which recipient or channel, and when; never a secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.storage.clock import as_utc, utcnow
from provider_gateway.storage.schema import audit_events


@dataclass(frozen=True)
class AuditEntry:
    action: str  # e.g. "channel_data.set", "install", "revoke", "api_keys.created"
    actor: str  # e.g. "secret_key:sk_...abcd", "user:u1", "cli"
    environment_id: str | None = None
    channel_id: str | None = None
    target: str | None = None  # e.g. "objects/$tenants/acme"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEvent:
    id: int
    occurred_at: datetime
    entry: AuditEntry


async def record(connection: AsyncConnection, entry: AuditEntry) -> None:
    """Write `entry` inside the caller's transaction, so it lands with the change it describes."""
    await connection.execute(
        audit_events.insert().values(
            occurred_at=utcnow(),
            environment_id=entry.environment_id,
            actor=entry.actor,
            action=entry.action,
            channel_id=entry.channel_id,
            target=entry.target,
            details=dict(entry.details),
        )
    )


@dataclass(frozen=True)
class AuditQuery:
    environment_id: str | None = None
    target: str | None = None
    channel_id: str | None = None
    actions: tuple[str, ...] = ()
    starting_at: datetime | None = None
    ending_at: datetime | None = None
    before_id: int | None = None
    limit: int = 50


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, entry: AuditEntry) -> None:
        """Record an event that is not part of a data change (e.g. an upstream revocation)."""
        async with self._engine.begin() as connection:
            await record(connection, entry)

    async def recent(self, limit: int = 100, environment_id: str | None = None) -> list[AuditEvent]:
        return await self.search(AuditQuery(environment_id=environment_id, limit=limit))

    async def search(self, query: AuditQuery) -> list[AuditEvent]:
        """Newest first; `before_id` continues a listing (keyset pagination)."""
        statement = select(audit_events).order_by(audit_events.c.id.desc()).limit(query.limit)
        conditions = [
            (query.environment_id, audit_events.c.environment_id.__eq__),
            (query.target, audit_events.c.target.__eq__),
            (query.channel_id, audit_events.c.channel_id.__eq__),
            (query.starting_at, audit_events.c.occurred_at.__ge__),
            (query.ending_at, audit_events.c.occurred_at.__lt__),
            (query.before_id, audit_events.c.id.__lt__),
        ]
        for value, condition in conditions:
            if value is not None:
                statement = statement.where(condition(value))
        if query.actions:
            statement = statement.where(audit_events.c.action.in_(query.actions))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [
            AuditEvent(
                id=row["id"],
                occurred_at=as_utc(row["occurred_at"]),
                entry=AuditEntry(
                    action=row["action"],
                    actor=row["actor"],
                    environment_id=row["environment_id"],
                    channel_id=row["channel_id"],
                    target=row["target"],
                    details=row["details"],
                ),
            )
            for row in rows
        ]
