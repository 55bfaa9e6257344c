"""Key pairs as operators see them: listed without secrets, revoked as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.errors import NotFound
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import as_utc, utcnow
from provider_gateway.storage.schema import api_keys, key_pairs


@dataclass(frozen=True)
class KeyPair:
    id: str
    environment_id: str
    public_key: str | None  # whole for pairs issued since 0004, else the hint "pk_...abcd"
    secret_key_hint: str | None  # the last four characters only
    created_at: datetime
    revoked_at: datetime | None


class KeyPairStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_environment(self, environment_id: str) -> list[KeyPair]:
        pairs = select(key_pairs).where(key_pairs.c.environment_id == environment_id)
        public_hints = select(api_keys.c.pair_id, api_keys.c.hint).where(
            api_keys.c.environment_id == environment_id, api_keys.c.kind == "public"
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(pairs.order_by(key_pairs.c.created_at))).mappings()
            listed = list(rows)
            hints = {row[0]: row[1] for row in await connection.execute(public_hints)}
        return [_pair(row, hints.get(row["id"])) for row in listed]

    async def get(self, pair_id: str) -> KeyPair | None:
        async with self._engine.connect() as connection:
            row = (
                (await connection.execute(select(key_pairs).where(key_pairs.c.id == pair_id)))
                .mappings()
                .first()
            )
        return _pair(row, None) if row else None

    async def revoke(self, pair_id: str, *, actor: str) -> KeyPair:
        """Both API keys and the signing key of the pair stop working (every replica forgets
        its cached lookups within `auth.LOOKUP_TTL_SECONDS`). Revoking twice changes nothing."""
        async with self._engine.begin() as connection:
            now = utcnow()
            result = await connection.execute(
                update(key_pairs)
                .where(key_pairs.c.id == pair_id, key_pairs.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = (
                (await connection.execute(select(key_pairs).where(key_pairs.c.id == pair_id)))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(f"no key pair with id {pair_id!r}")
            if result.rowcount == 1:
                await record(
                    connection,
                    AuditEntry(
                        "api_keys.revoked",
                        actor,
                        environment_id=row["environment_id"],
                        details={
                            "pair_id": pair_id,
                            "public_key": _public_hint(row["public_key"]),
                            "secret_key": _secret_hint(row["secret_key_hint"]),
                        },
                    ),
                )
        return _pair(row, None)


def _pair(row: RowMapping, public_hint: str | None) -> KeyPair:
    revoked_at = row["revoked_at"]
    return KeyPair(
        id=row["id"],
        environment_id=row["environment_id"],
        public_key=row["public_key"] or public_hint,
        secret_key_hint=row["secret_key_hint"],
        created_at=as_utc(row["created_at"]),
        revoked_at=as_utc(revoked_at) if revoked_at else None,
    )


def _public_hint(public_key: str | None) -> str | None:
    return f"{public_key[:3]}...{public_key[-4:]}" if public_key else None


def _secret_hint(last_four: str | None) -> str | None:
    return f"sk_...{last_four}" if last_four else None
