"""Retention: what the gateway keeps only for a while, deleted in small batches so a prune
never holds a long transaction or lock while the service writes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.storage.schema import audit_events

BATCH_SIZE = 1000


async def prune_audit_events(
    engine: AsyncEngine, *, before: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete the audit events that occurred before `before`; returns how many."""
    oldest = (
        select(audit_events.c.id)
        .where(audit_events.c.occurred_at < before)
        .order_by(audit_events.c.occurred_at)
        .limit(batch_size)
    )
    deleted = 0
    while True:
        async with engine.begin() as connection:
            result = await connection.execute(
                delete(audit_events).where(audit_events.c.id.in_(oldest.scalar_subquery()))
            )
        deleted += result.rowcount
        if result.rowcount < batch_size:
            return deleted
