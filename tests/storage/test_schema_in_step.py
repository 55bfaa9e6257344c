"""The migrations build exactly the tables schema.py describes, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from provider_gateway.gateway import Gateway
from provider_gateway.storage.schema import metadata


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migrated_schema_is_the_declared_one(gateway: Gateway) -> None:
    async with gateway.engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
