"""API keys (stored as hashes) and user-token signing keys (public half only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provider_gateway.errors import Conflict
from provider_gateway.keys import (
    KeyKind,
    api_key_kind,
    hash_api_key,
    key_hint,
    new_api_key,
    new_signing_key,
)
from provider_gateway.models import Environment
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.environments import environment_from_row
from provider_gateway.storage.schema import api_keys, environments, signing_keys


@dataclass(frozen=True)
class IssuedKeys:
    """Shown once, at creation; only hashes and the public signing key are kept."""

    environment: Environment
    public_key: str
    secret_key: str
    signing_key_pem: str


@dataclass(frozen=True)
class ApiKeyMatch:
    environment: Environment
    kind: KeyKind
    hint: str


class CredentialStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def issue(self, environment: Environment, *, actor: str) -> IssuedKeys:
        public_key, secret_key = new_api_key("public"), new_api_key("secret")
        signing = new_signing_key()
        async with self._engine.begin() as connection:
            await self._insert_api_key(connection, environment.id, "public", public_key)
            await self._insert_api_key(connection, environment.id, "secret", secret_key)
            await self.insert_signing_key(connection, environment.id, signing.public_pem)
            await record(
                connection,
                AuditEntry(
                    "api_keys.created",
                    actor,
                    environment_id=environment.id,
                    details={
                        "public_key": key_hint(public_key),
                        "secret_key": key_hint(secret_key),
                    },
                ),
            )
        return IssuedKeys(environment, public_key, secret_key, signing.private_pem)

    async def import_keys(
        self, environment: Environment, keys: list[str], signing_public_pems: list[str]
    ) -> None:
        """Register externally issued keys (declarative config); known ones are skipped."""
        async with self._engine.begin() as connection:
            for key in keys:
                match = await self._lookup(connection, key)
                if match is not None and match.environment.id != environment.id:
                    raise Conflict(
                        f"API key {key_hint(key)} already belongs to environment "
                        f"{match.environment.name!r}"
                    )
                if match is None:
                    kind: KeyKind = "secret" if api_key_kind(key) == "secret" else "public"
                    await self._insert_api_key(connection, environment.id, kind, key)
            known = {pem.strip() for pem in await self._signing_pems(connection, environment.id)}
            for pem in signing_public_pems:
                if pem.strip() not in known:
                    await self.insert_signing_key(connection, environment.id, pem.strip())
                    known.add(pem.strip())

    async def find(self, key: str) -> ApiKeyMatch | None:
        async with self._engine.connect() as connection:
            return await self._lookup(connection, key)

    async def signing_public_pems(self, environment_id: str) -> list[str]:
        async with self._engine.connect() as connection:
            return await self._signing_pems(connection, environment_id)

    @staticmethod
    async def _lookup(connection: AsyncConnection, key: str) -> ApiKeyMatch | None:
        query = (
            select(api_keys.c.kind, api_keys.c.hint, environments)
            .join(environments, environments.c.id == api_keys.c.environment_id)
            .where(api_keys.c.key_hash == hash_api_key(key))
        )
        row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        return ApiKeyMatch(
            environment=environment_from_row(row), kind=row["kind"], hint=row["hint"]
        )

    @staticmethod
    async def _signing_pems(connection: AsyncConnection, environment_id: str) -> list[str]:
        query = (
            select(signing_keys.c.public_key_pem)
            .where(signing_keys.c.environment_id == environment_id)
            .order_by(signing_keys.c.created_at.desc())
        )
        return list((await connection.execute(query)).scalars().all())

    @staticmethod
    async def _insert_api_key(
        connection: AsyncConnection, environment_id: str, kind: KeyKind, key: str
    ) -> None:
        await connection.execute(
            api_keys.insert().values(
                id=str(uuid.uuid4()),
                environment_id=environment_id,
                kind=kind,
                key_hash=hash_api_key(key),
                hint=key_hint(key),
                created_at=utcnow(),
            )
        )

    @staticmethod
    async def insert_signing_key(
        connection: AsyncConnection, environment_id: str, public_pem: str
    ) -> None:
        await connection.execute(
            signing_keys.insert().values(
                id=str(uuid.uuid4()),
                environment_id=environment_id,
                public_key_pem=public_pem,
                created_at=utcnow(),
            )
        )
