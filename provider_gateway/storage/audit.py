"""The audit log: who did what to which recipient or channel, and when; never a secret.

Details that identify a customer's directory (an Entra tenant id) are `sealed`: encrypted with
the key ring in their own column, as the channel data that holds them is, and shown only to
secret-key readers of the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.crypto import KeyRing, UndecryptableError
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
    sealed: Mapping[str, Any] = field(default_factory=dict)  # stored encrypted

    def revealed(self) -> dict[str, Any]:
        """Every detail, sealed ones included, for a reader who may see them."""
        return {**self.details, **self.sealed}


@dataclass(frozen=True)
class AuditEvent:
    id: int
    occurred_at: datetime
    entry: AuditEntry


async def record(
    connection: AsyncConnection, entry: AuditEntry, key_ring: KeyRing | None = None
) -> None:
    """Write `entry` inside the caller's transaction, so it lands with the change it describes.

    An entry with sealed details needs the key ring."""
    if entry.sealed and key_ring is None:
        raise ValueError("sealed audit details need the key ring")
    sealed = (
        key_ring.encrypt(json.dumps(dict(entry.sealed)).encode())
        if entry.sealed and key_ring
        else None
    )
    await connection.execute(
        audit_events.insert().values(
            occurred_at=utcnow(),
            environment_id=entry.environment_id,
            actor=entry.actor,
            action=entry.action,
            channel_id=entry.channel_id,
            target=entry.target,
            details=dict(entry.details),
            sealed_details=sealed,
        )
    )


# Detail keys that name a customer's directory: sealed since 0003 (ms_teams/oauth.py and
# service.py write them sealed); rows from before are sealed once by `seal_legacy_details`.
SEALED_DETAIL_KEYS = ("ms_teams_tenant_id",)
_LEGACY_BATCH = 500


async def seal_legacy_details(connection: AsyncConnection, key_ring: KeyRing) -> int:
    """Move sealed-kind details of rows written before 0003 into `sealed_details`, inside the
    caller's transaction (the one that upgrades past 0003), so they are never left in clear
    once the schema says they are sealed. Returns how many rows it sealed."""
    sealed_rows, last_id = 0, 0
    while True:
        rows = (
            await connection.execute(
                select(audit_events.c.id, audit_events.c.details)
                .where(audit_events.c.id > last_id, audit_events.c.sealed_details.is_(None))
                .order_by(audit_events.c.id)
                .limit(_LEGACY_BATCH)
            )
        ).all()
        if not rows:
            return sealed_rows
        last_id = rows[-1].id
        for row in rows:
            details = dict(row.details or {})
            sealed = {key: details.pop(key) for key in SEALED_DETAIL_KEYS if key in details}
            if sealed:
                await connection.execute(
                    audit_events.update()
                    .where(audit_events.c.id == row.id)
                    .values(
                        details=details,
                        sealed_details=key_ring.encrypt(json.dumps(sealed).encode()),
                    )
                )
                sealed_rows += 1


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
    def __init__(self, engine: AsyncEngine, key_ring: KeyRing) -> None:
        self._engine = engine
        self._key_ring = key_ring

    async def append(self, entry: AuditEntry) -> None:
        """Record an event that is not part of a data change (e.g. an upstream revocation)."""
        async with self._engine.begin() as connection:
            await record(connection, entry, self._key_ring)

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
                    sealed=self._unseal(row["sealed_details"]),
                ),
            )
            for row in rows
        ]

    def _unseal(self, sealed: str | None) -> dict[str, Any]:
        if not sealed:
            return {}
        try:
            details: dict[str, Any] = json.loads(self._key_ring.decrypt(sealed))
        except UndecryptableError:
            return {"sealed": "undecryptable with the current keys"}
        return details
