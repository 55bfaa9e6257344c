"""Writers of one record take turns: a write lock first, a short jittered retry only for the
race to create a record, and never a 5xx for losing that race (CONTRACT §4).

PostgreSQL: the stores read the row `FOR UPDATE`, so concurrent writers queue on its lock and
each applies its change to the previous one's result. Two writers that both find no row both
insert; the loser's unique violation is retried, and then finds the winner's row to lock.

SQLite: `BEGIN IMMEDIATE` takes the database's write lock before the read (waiting up to the
busy timeout), so a read-modify-write is never interleaved with another one. Python's sqlite3
would otherwise begin the transaction only at the first write, after our read.
"""

from __future__ import annotations

import asyncio
import random

from sqlalchemy.ext.asyncio import AsyncConnection

from provider_gateway.errors import Conflict

# Only the create race retries: one retry finds the winner's row. More than a few means a
# create and a delete keep racing, which a client retry sorts out better than holding on.
MAX_ATTEMPTS = 5
_BACKOFF_BASE_SECONDS = 0.01


class ConcurrentUpdateError(Conflict):
    """The record kept being created and removed under us: 409 with Retry-After, never a 5xx."""

    default_message = "The record is being changed by other requests; retry"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = "1"


async def lock_for_write(connection: AsyncConnection) -> None:
    """Begin the transaction holding the write lock where the database has one (SQLite);
    call first in `engine.begin()`. PostgreSQL locks the row itself (`FOR UPDATE`)."""
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def back_off(attempt: int) -> None:
    """Full jitter, doubling per attempt: racers that lost together do not retry together."""
    await asyncio.sleep(random.uniform(0, _BACKOFF_BASE_SECONDS * 2**attempt))  # noqa: S311
