"""Environments (e.g. development, production): each has its own keys and channel data."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.errors import Conflict
from provider_gateway.models import Environment
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import as_utc, utcnow
from provider_gateway.storage.schema import environments


class EnvironmentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, name: str, *, actor: str) -> Environment:
        environment = Environment(id=str(uuid.uuid4()), name=name, created_at=utcnow())
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    environments.insert().values(
                        id=environment.id, name=name, created_at=environment.created_at
                    )
                )
                await record(
                    connection,
                    AuditEntry("environment.created", actor, environment_id=environment.id),
                )
        except IntegrityError:
            raise Conflict(f"environment {name!r} already exists") from None
        return environment

    async def by_name(self, name: str) -> Environment | None:
        return await self._one(environments.c.name == name)

    async def by_id(self, environment_id: str) -> Environment | None:
        return await self._one(environments.c.id == environment_id)

    async def all(self) -> list[Environment]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(environments))).mappings().all()
        return [environment_from_row(row) for row in rows]

    async def _one(self, condition: Any) -> Environment | None:
        async with self._engine.connect() as connection:
            row = (
                (await connection.execute(select(environments).where(condition))).mappings().first()
            )
        return environment_from_row(row) if row else None


def environment_from_row(row: Any) -> Environment:
    return Environment(id=row["id"], name=row["name"], created_at=as_utc(row["created_at"]))
