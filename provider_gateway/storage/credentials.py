"""API keys (stored as hashes) and user-token signing keys (public half only), in key pairs."""

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
from provider_gateway.storage.schema import api_keys, environments, key_pairs, signing_keys


@dataclass(frozen=True)
class IssuedKeys:
    """Shown once, at creation; only hashes and the public signing key are kept."""

    pair_id: str
    environment: Environment
    public_key: str
    secret_key: str
    signing_key_pem: str


@dataclass(frozen=True)
class ApiKeyMatch:
    environment: Environment
    kind: KeyKind
    hint: str


@dataclass(frozen=True)
class DeclaredPair:
    """Keys issued elsewhere and declared together (GATEWAY_CHANNELS_FILE); any may be absent."""

    public_key: str | None = None
    secret_key: str | None = None
    signing_public_pem: str | None = None


class CredentialStore:
    """Lookups see only keys of unrevoked pairs; `storage.key_pairs` lists and revokes them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def issue(self, environment: Environment, *, actor: str) -> IssuedKeys:
        public_key, secret_key = new_api_key("public"), new_api_key("secret")
        signing = new_signing_key()
        async with self._engine.begin() as connection:
            pair_id = await _insert_pair(connection, environment.id, public_key, secret_key)
            await _insert_api_key(connection, environment.id, pair_id, "public", public_key)
            await _insert_api_key(connection, environment.id, pair_id, "secret", secret_key)
            await _insert_signing_key(connection, environment.id, pair_id, signing.public_pem)
            await record(
                connection,
                AuditEntry(
                    "api_keys.created",
                    actor,
                    environment_id=environment.id,
                    details={
                        "pair_id": pair_id,
                        "public_key": key_hint(public_key),
                        "secret_key": key_hint(secret_key),
                    },
                ),
            )
        return IssuedKeys(pair_id, environment, public_key, secret_key, signing.private_pem)

    async def import_keys(self, environment: Environment, pairs: list[DeclaredPair]) -> None:
        """Register externally issued keys (declarative config); known ones are skipped, so a
        revoked key stays revoked however often the file is applied."""
        async with self._engine.begin() as connection:
            known_pems = {pem.strip() for pem in await _all_signing_pems(connection, environment)}
            for pair in pairs:
                await self._import_pair(connection, environment, pair, known_pems)

    async def _import_pair(
        self,
        connection: AsyncConnection,
        environment: Environment,
        pair: DeclaredPair,
        known_pems: set[str],
    ) -> None:
        pair_id: str | None = None
        missing: list[str] = []
        for key in (pair.public_key, pair.secret_key):
            if key is None:
                continue
            found = await _lookup(connection, key, include_revoked=True)
            if found is None:
                missing.append(key)
                continue
            match, found_pair = found
            if match.environment.id != environment.id:
                raise Conflict(
                    f"API key {key_hint(key)} already belongs to environment "
                    f"{match.environment.name!r}"
                )
            pair_id = found_pair
        pem = (pair.signing_public_pem or "").strip()
        if not missing and (not pem or pem in known_pems):
            return
        if pair_id is None:
            pair_id = await _insert_pair(
                connection, environment.id, pair.public_key, pair.secret_key
            )
        for key in missing:
            kind: KeyKind = "secret" if api_key_kind(key) == "secret" else "public"
            await _insert_api_key(connection, environment.id, pair_id, kind, key)
        if pem and pem not in known_pems:
            await _insert_signing_key(connection, environment.id, pair_id, pem)
            known_pems.add(pem)

    async def find(self, key: str) -> ApiKeyMatch | None:
        async with self._engine.connect() as connection:
            found = await _lookup(connection, key, include_revoked=False)
        return found[0] if found else None

    async def signing_public_pems(self, environment_id: str) -> list[str]:
        """The environment's signing keys of unrevoked pairs, newest first."""
        query = (
            select(signing_keys.c.public_key_pem)
            .join(key_pairs, key_pairs.c.id == signing_keys.c.pair_id)
            .where(signing_keys.c.environment_id == environment_id)
            .where(key_pairs.c.revoked_at.is_(None))
            .order_by(signing_keys.c.created_at.desc())
        )
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).scalars().all())


async def _lookup(
    connection: AsyncConnection, key: str, *, include_revoked: bool
) -> tuple[ApiKeyMatch, str] | None:
    query = (
        select(api_keys.c.kind, api_keys.c.hint, api_keys.c.pair_id, environments)
        .join(environments, environments.c.id == api_keys.c.environment_id)
        .join(key_pairs, key_pairs.c.id == api_keys.c.pair_id)
        .where(api_keys.c.key_hash == hash_api_key(key))
    )
    if not include_revoked:
        query = query.where(key_pairs.c.revoked_at.is_(None))
    row = (await connection.execute(query)).mappings().first()
    if row is None:
        return None
    match = ApiKeyMatch(environment=environment_from_row(row), kind=row["kind"], hint=row["hint"])
    return match, row["pair_id"]


async def _all_signing_pems(connection: AsyncConnection, environment: Environment) -> list[str]:
    query = select(signing_keys.c.public_key_pem).where(
        signing_keys.c.environment_id == environment.id
    )
    return list((await connection.execute(query)).scalars().all())


async def _insert_pair(
    connection: AsyncConnection,
    environment_id: str,
    public_key: str | None,
    secret_key: str | None,
) -> str:
    pair_id = str(uuid.uuid4())
    await connection.execute(
        key_pairs.insert().values(
            id=pair_id,
            environment_id=environment_id,
            public_key=public_key,
            secret_key_hint=secret_key[-4:] if secret_key else None,
            created_at=utcnow(),
        )
    )
    return pair_id


async def _insert_api_key(
    connection: AsyncConnection, environment_id: str, pair_id: str, kind: KeyKind, key: str
) -> None:
    await connection.execute(
        api_keys.insert().values(
            id=str(uuid.uuid4()),
            environment_id=environment_id,
            pair_id=pair_id,
            kind=kind,
            key_hash=hash_api_key(key),
            hint=key_hint(key),
            created_at=utcnow(),
        )
    )


async def _insert_signing_key(
    connection: AsyncConnection, environment_id: str, pair_id: str, public_pem: str
) -> None:
    await connection.execute(
        signing_keys.insert().values(
            id=str(uuid.uuid4()),
            environment_id=environment_id,
            pair_id=pair_id,
            public_key_pem=public_pem,
            created_at=utcnow(),
        )
    )
