"""Engine creation for SQLite and PostgreSQL, and schema migration with Alembic."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from yarl import URL

from provider_gateway.config import Settings
from provider_gateway.crypto import KeyRing
from provider_gateway.storage.audit import seal_legacy_details
from provider_gateway.storage.outage import guarded
from provider_gateway.storage.rotation import backfill_blind_index

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^revision\s*=\s*[\"'](\w+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*[\"'](\w+)[\"']", re.MULTILINE)
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


def sqlite_path(settings: Settings) -> Path | None:
    """The database file of a SQLite URL (absolute), else None."""
    url = async_url(settings.database_url.reveal())
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return Path(database).absolute() if database and database != ":memory:" else None


def display_url(settings: Settings) -> str:
    """The database URL for logs and messages: password masked, SQLite paths absolute."""
    path = sqlite_path(settings)
    if path is not None:
        return f"sqlite:///{path}"
    url = URL(settings.database_url.reveal())
    return str(url.with_password("***")) if url.password else str(url)


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine every store uses; its connections raise `DatabaseUnavailable` for outages
    (storage.outage)."""
    return guarded(_create_engine(settings))


def _create_engine(settings: Settings) -> AsyncEngine:
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
        connect_args={
            # Connecting to a host that accepts but never answers gives up as a wait for a
            # pooled connection does (asyncpg would wait 60 s): then it is a 503, not a hang.
            "timeout": pool.timeout_seconds,
            # Server-side, so a runaway query is cancelled in PostgreSQL, not only abandoned.
            "server_settings": {
                "statement_timeout": str(round(pool.statement_timeout_seconds * 1000))
            },
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def head_revision() -> str | None:
    """The newest migration, read from the files' `revision`/`down_revision` lines: Alembic
    itself takes longer to import than everything else the CLI needs (None: not linear)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(source))
        parents.update(_DOWN_REVISION.findall(source))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def current_revision(connection: AsyncConnection) -> str | None:
    """The schema's revision, by one query (None: never migrated)."""
    exists = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        if connection.dialect.name == "sqlite"
        else "SELECT count(*) FROM pg_catalog.pg_tables "
        "WHERE tablename = 'alembic_version' AND schemaname = current_schema()"
    )
    if not (await connection.execute(text(exists))).scalar():
        return None
    rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
    versions = list(rows)
    return versions[0] if len(versions) == 1 else None


async def migrate(engine: AsyncEngine, key_ring: KeyRing) -> str | None:
    """Upgrade the schema to the newest revision, then fill in what needs the key ring (the
    blind index of rows written before it existed, in batches); safe when replicas start
    together."""
    revision = await _upgrade_if_behind(engine, key_ring)
    backfilled = await backfill_blind_index(engine, key_ring)
    if backfilled:
        log.info("blind index backfilled", extra={"rows": backfilled})
    return revision


# Revisions whose code wrote audit details in clear that later ones seal.
_BEFORE_SEALED_AUDIT = frozenset({"0001", "0002"})


async def _upgrade_if_behind(engine: AsyncEngine, key_ring: KeyRing) -> str | None:
    """Alembic is loaded only when the schema is behind: the usual start finds it current.
    Data the new schema keeps sealed is sealed in the same transaction as the upgrade."""
    head = head_revision()
    async with engine.connect() as connection:
        if head is not None and await current_revision(connection) == head:
            return head
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Building an index on a big table may take longer than a request may.
            await connection.execute(text("SET LOCAL statement_timeout = 0"))
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        before = await current_revision(connection)
        await connection.run_sync(_upgrade)
        if before in _BEFORE_SEALED_AUDIT:
            sealed = await seal_legacy_details(connection, key_ring)
            log.info("audit details sealed", extra={"rows": sealed})
        return await current_revision(connection)


async def schema_is_current(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return await current_revision(connection) == head_revision()
