"""Re-encrypt every stored secret under the newest key, safely while the service runs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.crypto import KeyRing
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.schema import audit_events, channel_data, channels

# (table, primary key, encrypted column): every ciphertext the gateway stores.
ENCRYPTED_COLUMNS: tuple[tuple[Table, Column[object], Column[str]], ...] = (
    (channels, channels.c.id, channels.c.client_secret_encrypted),
    (channels, channels.c.id, channels.c.signing_secret_encrypted),
    (channel_data, channel_data.c.id, channel_data.c.payload_encrypted),
    (audit_events, audit_events.c.id, audit_events.c.sealed_details),
)
_BATCH = 200


@dataclass
class RotationReport:
    rotated: int = 0
    already_current: int = 0


async def rotate_encryption_key(
    engine: AsyncEngine, key_ring: KeyRing, *, actor: str
) -> RotationReport:
    """Each row is swapped only if its ciphertext is unchanged since it was read.

    A row the running service rewrote meanwhile is read again and, if its new ciphertext
    is not yet under the newest key, rotated again: nothing written concurrently is lost.
    """
    report = RotationReport()
    for table, key, column in ENCRYPTED_COLUMNS:
        last: object = None
        while True:
            query = select(key, column).where(column.is_not(None)).order_by(key).limit(_BATCH)
            if last is not None:
                query = query.where(key > last)
            async with engine.connect() as connection:
                rows = (await connection.execute(query)).all()
            if not rows:
                break
            last = rows[-1][0]
            for row_key, ciphertext in rows:
                await _rotate_row(engine, key_ring, table, key, column, row_key, ciphertext, report)
    async with engine.begin() as connection:
        await record(
            connection,
            AuditEntry(
                "encryption_key.rotated",
                actor,
                details={"rotated": report.rotated, "already_current": report.already_current},
            ),
        )
    return report


async def _rotate_row(
    engine: AsyncEngine,
    key_ring: KeyRing,
    table: Table,
    key: Column[object],
    column: Column[str],
    row_key: object,
    ciphertext: str | None,
    report: RotationReport,
) -> None:
    while ciphertext is not None:
        if key_ring.is_current(ciphertext):
            report.already_current += 1
            return
        async with engine.begin() as connection:
            result = await connection.execute(
                update(table)
                .where(key == row_key, column == ciphertext)
                .values({column.name: key_ring.rotate(ciphertext)})
            )
            if result.rowcount == 1:
                report.rotated += 1
                return
            # Changed (or deleted) since we read it: look again.
            ciphertext = (
                await connection.execute(select(column).where(key == row_key))
            ).scalar_one_or_none()
