"""Engine creation for SQLite and PostgreSQL, and schema migration with Alembic."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from provider_gateway.config import Settings
from provider_gateway.crypto import KeyRing
from provider_gateway.storage.rotation import backfill_blind_index

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica of the gateway.
_MIGRATION_LOCK_ID = 0x70726F76


def async_url(url: str) -> str:
    """Map the contract's URL forms onto SQLAlchemy's async drivers."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def create_engine(settings: Settings) -> AsyncEngine:
    url = async_url(settings.database_url.reveal())
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    pool = settings.database_pool
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout_seconds,
        # Server-side, so a runaway query is cancelled in PostgreSQL, not only abandoned.
        connect_args={
            "server_settings": {
                "statement_timeout": str(round(pool.statement_timeout_seconds * 1000))
            }
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(engine: AsyncEngine, key_ring: KeyRing) -> str | None:
    """Upgrade the schema to the newest revision, then fill in what needs the key ring (the
    blind index of rows written before it existed, in batches); safe when replicas start
    together."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Building an index on a big table may take longer than a request may.
            await connection.execute(text("SET LOCAL statement_timeout = 0"))
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        await connection.run_sync(_upgrade)
        revision = await connection.run_sync(_current)
    backfilled = await backfill_blind_index(engine, key_ring)
    if backfilled:
        log.info("blind index backfilled", extra={"rows": backfilled})
    return revision


async def schema_is_current(engine: AsyncEngine) -> bool:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    async with engine.connect() as connection:
        return await connection.run_sync(_current) == head
