"""Re-encrypt every stored secret under the newest key, in batches, while the service runs.

Channel data rows record which ring key encrypted them (`key_id`), so the rows still to do are
found by SQL, a batch at a time (keyset pagination, one transaction per batch): an interrupted
rotation resumes where it stopped, and a finished one costs a count to run again. Every row is
swapped only if its ciphertext is unchanged since it was read (compare-and-swap), so nothing
the service writes meanwhile is lost; a row rewritten under an older key is done again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.crypto import KeyRing
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.blind_index import BlindIndex
from provider_gateway.storage.schema import audit_events, channel_data, channels, users

# Other ciphertexts, each checked and swapped on its own: (table, primary key, column).
# Channel secrets are few; sealed audit details come one per Teams install or revoke; users'
# properties one per identified user (these carry no key_id: each is decrypted to be checked).
SECRET_COLUMNS: tuple[tuple[Table, Any, Any], ...] = (
    (channels, channels.c.id, channels.c.client_secret_encrypted),
    (channels, channels.c.id, channels.c.signing_secret_encrypted),
    (audit_events, audit_events.c.id, audit_events.c.sealed_details),
    (users, users.c.id, users.c.properties_encrypted),
)
# Every ciphertext the gateway stores (channel data in batches, by key_id, in rotation).
ENCRYPTED_COLUMNS: tuple[tuple[Table, Any, Any], ...] = (
    *SECRET_COLUMNS,
    (channel_data, channel_data.c.id, channel_data.c.payload_encrypted),
)
BATCH_SIZE = 500


@dataclass
class RotationReport:
    rotated: int = 0
    already_current: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class RotationProgress:
    done: int
    total: int
    elapsed: float


Progress = Callable[[RotationProgress], None]


async def rotate_encryption_key(
    engine: AsyncEngine,
    key_ring: KeyRing,
    *,
    actor: str,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> RotationReport:
    started = time.monotonic()
    report = RotationReport()
    index = BlindIndex(key_ring)
    stale = or_(channel_data.c.key_id.is_(None), channel_data.c.key_id != index.current_key_id)
    async with engine.connect() as connection:
        total = await _count(connection, channel_data, stale)
        for table, _, column in SECRET_COLUMNS:
            total += await _count(connection, table, column.is_not(None))
        # Rows already under the newest key are skipped by SQL, without being read.
        skipped = await _count(
            connection, channel_data, channel_data.c.key_id == index.current_key_id
        )
    report.already_current = skipped

    def tick() -> None:
        if progress is not None:
            done = min(total, report.rotated + report.already_current - skipped)
            progress(RotationProgress(done, total, time.monotonic() - started))

    tick()
    for table, key, column in SECRET_COLUMNS:
        await _rotate_secrets(engine, key_ring, (table, key, column), report, batch_size, tick)
    await reencrypt_channel_data(engine, key_ring, stale, report, batch_size, tick)
    report.seconds = round(time.monotonic() - started, 3)
    if progress is not None:  # rows the service rewrote meanwhile were counted, not visited
        progress(RotationProgress(total, total, report.seconds))
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


async def reencrypt_channel_data(
    engine: AsyncEngine,
    key_ring: KeyRing,
    condition: ColumnElement[bool],
    report: RotationReport,
    batch_size: int = BATCH_SIZE,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Re-encrypt and re-index, under the newest key, every channel data row matching
    `condition`, a batch per transaction, each row by compare-and-swap on its ciphertext."""
    index = BlindIndex(key_ring)
    swap = update(channel_data).where(
        channel_data.c.id == bindparam("row_id"),
        channel_data.c.payload_encrypted == bindparam("seen"),
    )
    last = 0
    while True:
        async with engine.begin() as connection:
            query = (
                select(channel_data.c.id, channel_data.c.payload_encrypted)
                .where(condition, channel_data.c.id > last)
                .order_by(channel_data.c.id)
                .limit(batch_size)
            )
            rows = (await connection.execute(query)).all()
            if not rows:
                return
            last = rows[-1][0]
            while rows:
                changes = [_reencrypted(key_ring, index, row_id, seen) for row_id, seen in rows]
                await connection.execute(swap, changes)
                rows = await _outcome(connection, changes, index.current_key_id, report)
        tick()


def _reencrypted(key_ring: KeyRing, index: BlindIndex, row_id: int, seen: str) -> dict[str, Any]:
    plaintext = key_ring.decrypt(seen)
    return {
        "row_id": row_id,
        "seen": seen,
        "payload_encrypted": key_ring.encrypt(plaintext),
        **index.columns(json.loads(plaintext)),
    }


async def _outcome(
    connection: AsyncConnection,
    changes: list[dict[str, Any]],
    current_key_id: str,
    report: RotationReport,
) -> list[Any]:
    """Count what landed; return the rows a writer changed under an older key meanwhile."""
    written = {change["row_id"]: change["payload_encrypted"] for change in changes}
    query = select(
        channel_data.c.id, channel_data.c.payload_encrypted, channel_data.c.key_id
    ).where(channel_data.c.id.in_(written))
    again = []
    for row_id, ciphertext, key_id in (await connection.execute(query)).all():
        if ciphertext == written[row_id]:
            report.rotated += 1
        elif key_id == current_key_id:
            report.already_current += 1  # the service rewrote it under the newest key
        else:
            again.append((row_id, ciphertext))
    return again


async def _rotate_secrets(
    engine: AsyncEngine,
    key_ring: KeyRing,
    where: tuple[Table, Any, Any],
    report: RotationReport,
    batch_size: int,
    tick: Callable[[], None],
) -> None:
    _, key, column = where
    last: object = None
    while True:
        query = select(key, column).where(column.is_not(None)).order_by(key)
        if last is not None:
            query = query.where(key > last)
        async with engine.begin() as connection:
            rows = (await connection.execute(query.limit(batch_size))).all()
            if not rows:
                return
            last = rows[-1][0]
            for row_key, ciphertext in rows:
                await _rotate_secret(connection, key_ring, where, row_key, ciphertext, report)
        tick()


async def _rotate_secret(
    connection: AsyncConnection,
    key_ring: KeyRing,
    where: tuple[Table, Any, Any],
    row_key: object,
    ciphertext: str | None,
    report: RotationReport,
) -> None:
    table, key, column = where
    while ciphertext is not None:
        if key_ring.is_current(ciphertext):
            report.already_current += 1
            return
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


async def backfill_blind_index(engine: AsyncEngine, key_ring: KeyRing) -> int:
    """Index (and encrypt under the newest key) the channel data rows written before the
    blind index existed; runs after every migration, and finds nothing to do once done."""
    report = RotationReport()
    await reencrypt_channel_data(engine, key_ring, channel_data.c.key_id.is_(None), report)
    return report.rotated + report.already_current


async def _count(connection: AsyncConnection, table: Table, condition: Any) -> int:
    return int(
        (
            await connection.execute(select(func.count()).select_from(table).where(condition))
        ).scalar_one()
    )
