"""Migrations: the cheap head check agrees with Alembic, the schema matches schema.py, and
keys issued before key pairs existed keep working (and become revocable)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.config import Settings
from provider_gateway.crypto import load_key_ring
from provider_gateway.keys import hash_api_key, key_hint, new_api_key, new_signing_key
from provider_gateway.storage.audit import AuditLog
from provider_gateway.storage.credentials import CredentialStore
from provider_gateway.storage.database import (
    MIGRATIONS_DIR,
    create_engine,
    head_revision,
    migrate,
)
from provider_gateway.storage.key_pairs import KeyPairStore
from provider_gateway.storage.schema import metadata


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    created = create_engine(settings)
    yield created
    await created.dispose()


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


async def test_migrations_create_exactly_the_tables_of_schema_py(
    engine: AsyncEngine, settings: Settings
) -> None:
    assert await migrate(engine, load_key_ring(settings)) == head_revision()

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_keys_issued_before_key_pairs_keep_working_and_can_be_revoked(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0002"))  # type: ignore[arg-type]
    environment_id, now = str(uuid.uuid4()), datetime.now(UTC)
    public_key, secret_key = new_api_key("public"), new_api_key("secret")
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO environments (id, name, created_at) VALUES (:id, 'legacy', :now)"),
            {"id": environment_id, "now": now},
        )
        for kind, key in (("public", public_key), ("secret", secret_key)):
            await connection.execute(
                text(
                    "INSERT INTO api_keys (id, environment_id, kind, key_hash, hint, created_at) "
                    "VALUES (:id, :environment, :kind, :hash, :hint, :now)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "environment": environment_id,
                    "kind": kind,
                    "hash": hash_api_key(key),
                    "hint": key_hint(key),
                    "now": now,
                },
            )
        await connection.execute(
            text(
                "INSERT INTO signing_keys (id, environment_id, public_key_pem, created_at) "
                "VALUES (:id, :environment, :pem, :now)"
            ),
            {
                "id": str(uuid.uuid4()),
                "environment": environment_id,
                "pem": new_signing_key().public_pem,
                "now": now,
            },
        )

    assert await migrate(engine, load_key_ring(settings)) == head_revision()

    credentials, pairs = CredentialStore(engine), KeyPairStore(engine)
    assert await credentials.find(secret_key) is not None
    assert await credentials.find(public_key) is not None
    listed = await pairs.for_environment(environment_id)
    assert len(listed) == 3  # which keys were issued together was never recorded
    public = next(pair for pair in listed if pair.public_key == key_hint(public_key))
    secret = next(pair for pair in listed if pair.secret_key_hint == secret_key[-4:])
    await pairs.revoke(secret.id, actor="cli")
    assert await credentials.find(secret_key) is None
    assert await credentials.find(public_key) is not None
    assert public.revoked_at is None


async def test_directory_ids_audited_before_sealing_existed_are_sealed_by_the_upgrade(
    engine: AsyncEngine, settings: Settings
) -> None:
    directory = "7f3c1a52-3c0e-4a53-9d53-2b8f4d5e6a71"
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0002"))  # type: ignore[arg-type]
        for action, details in (
            ("ms_teams.connected", {"ms_teams_tenant_id": directory, "via": "consent"}),
            ("slack.connected", {"team_id": "T1"}),
        ):
            await connection.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, actor, action, details) "
                    "VALUES (:now, 'oauth', :action, :details)"
                ),
                {"now": datetime.now(UTC), "action": action, "details": json.dumps(details)},
            )

    key_ring = load_key_ring(settings)
    assert await migrate(engine, key_ring) == head_revision()

    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT action, details, sealed_details FROM audit_events ORDER BY id")
            )
        ).all()
    assert directory not in repr(stored)  # nowhere in clear, sealed column included
    teams, slack = stored
    assert json.loads(key_ring.decrypt(teams.sealed_details)) == {"ms_teams_tenant_id": directory}
    assert slack.sealed_details is None
    events = await AuditLog(engine, key_ring).recent()
    teams_event = next(event for event in events if event.entry.action == "ms_teams.connected")
    assert teams_event.entry.revealed() == {"ms_teams_tenant_id": directory, "via": "consent"}
