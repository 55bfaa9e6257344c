"""Does the stored data decrypt with the key ring? Sampled at start-up, in full by `doctor`.

The sample: every channel's secrets (few rows, and every request needs them), plus channel
data read by primary key only, so it costs the same at 100 rows as at 100,000:
- the first and last rows by id: a wrong or missing newest key fails every row, and
  `rotate-encryption-key` works in id order, so an interrupted rotation leaves the last ids
  under the old key;
- rows at random ids in between, which find a scattered minority (rows written by a replica
  with another key, or rows older than a key dropped too early) with probability
  1 - (1 - share) ** RANDOM_PROBES: 99 % for a 9 % share.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.crypto import KeyRing, UndecryptableError
from provider_gateway.storage.rotation import ENCRYPTED_COLUMNS
from provider_gateway.storage.schema import channel_data, channels

EDGE_ROWS = 25
RANDOM_PROBES = 50
_BATCH = 500


@dataclass
class KeyCheck:
    checked: int = 0
    under_older_keys: int = 0  # readable, but not yet rotated to the newest key
    unreadable: int = 0
    first_unreadable: str | None = None  # e.g. "channel data row 17"

    def add(self, key_ring: KeyRing, where: str, ciphertext: str | None) -> None:
        if ciphertext is None:
            return
        self.checked += 1
        try:
            key_ring.decrypt(ciphertext)
        except UndecryptableError:
            self.unreadable += 1
            self.first_unreadable = self.first_unreadable or where
            return
        if not key_ring.is_current(ciphertext):
            self.under_older_keys += 1

    def problem(self) -> str | None:
        """One line for the operator, or None when everything checked decrypts."""
        if not self.unreadable:
            return None
        return (
            f"stored data does not decrypt with any key of GATEWAY_ENCRYPTION_KEYS "
            f"({self.unreadable} of {self.checked} values checked, first {self.first_unreadable}); "
            "was a key removed before rotate-encryption-key ran, or is it another "
            "deployment's key?"
        )


async def check_sample(engine: AsyncEngine, key_ring: KeyRing) -> KeyCheck:
    """Every channel's secrets and about a hundred channel data rows; see the module doc."""
    report = KeyCheck()
    async with engine.connect() as connection:
        for row in await connection.execute(
            select(
                channels.c.id,
                channels.c.client_secret_encrypted,
                channels.c.signing_secret_encrypted,
            )
        ):
            report.add(key_ring, f"channel {row[0]} client secret", row[1])
            report.add(key_ring, f"channel {row[0]} signing secret", row[2])
        for row_id, payload in await _sampled_channel_data(connection):
            report.add(key_ring, f"channel data row {row_id}", payload)
    return report


async def _sampled_channel_data(connection: AsyncConnection) -> Iterable[tuple[int, str]]:
    key, payload = channel_data.c.id, channel_data.c.payload_encrypted
    rows: dict[int, str] = {}
    for order in (key.asc(), key.desc()):
        query = select(key, payload).order_by(order).limit(EDGE_ROWS)
        rows.update({row[0]: row[1] for row in await connection.execute(query)})
    low, high = (await connection.execute(select(func.min(key), func.max(key)))).one()
    if low is not None and high - low > 2 * EDGE_ROWS:
        for _ in range(RANDOM_PROBES):
            probe = low + secrets.randbelow(high - low + 1)
            query = select(key, payload).where(key >= probe).order_by(key).limit(1)
            rows.update({row[0]: row[1] for row in await connection.execute(query)})
    return rows.items()


async def check_all(engine: AsyncEngine, key_ring: KeyRing) -> KeyCheck:
    """Every stored ciphertext, in batches (what `doctor` runs)."""
    report = KeyCheck()
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
                report.add(key_ring, f"{table.name}.{column.name} of {row_key}", ciphertext)
    return report
