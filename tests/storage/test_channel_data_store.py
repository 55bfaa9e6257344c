"""The channel data store on SQLite and PostgreSQL: round trips, atomic changes, audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from provider_gateway.gateway import Gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.audit import AuditEntry
from provider_gateway.storage.database import (
    MIGRATIONS_DIR,
    head_revision,
    migrate,
    schema_is_current,
)
from provider_gateway.storage.schema import audit_events, channel_data
from tests.support import seed_world

TENANT = Recipient.object("$tenants", "acme")


async def test_migrations_are_idempotent(gateway: Gateway) -> None:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    assert head == head_revision()  # the quick reading of the migration files agrees
    assert len(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()) == 1  # one line of history
    assert await migrate(gateway.engine, gateway.key_ring) == head
    assert await schema_is_current(gateway.engine)


async def test_set_get_and_remove_round_trip(gateway: Gateway) -> None:
    world = await seed_world(gateway)
    env = world.slack.environment_id
    assert env is not None
    data = {"connections": [{"channel_id": "C1"}], "token": {"access_token": "xoxb-1"}}
    assert await gateway.channel_data.update(env, world.slack.id, TENANT, lambda _: data) == data
    assert await gateway.channel_data.get(env, world.slack.id, TENANT) == data
    # Users and objects with the same id are different recipients.
    assert await gateway.channel_data.get(env, world.slack.id, Recipient.user("acme")) is None
    await gateway.channel_data.update(env, world.slack.id, TENANT, lambda _: None)
    assert await gateway.channel_data.get(env, world.slack.id, TENANT) is None


async def test_concurrent_changes_are_all_applied(gateway: Gateway) -> None:
    """Read-modify-write under contention: compare-and-swap loses no update."""
    world = await seed_world(gateway)
    env = world.slack.environment_id
    assert env is not None

    def append(channel: str) -> Any:
        def change(stored: dict[str, Any] | None) -> dict[str, Any]:
            current = stored or {"connections": []}
            current["connections"].append({"channel_id": channel})
            return current

        return change

    await asyncio.gather(
        *(
            gateway.channel_data.update(env, world.slack.id, TENANT, append(f"C{i}"))
            for i in range(12)
        )
    )
    stored = await gateway.channel_data.get(env, world.slack.id, TENANT)
    assert stored is not None
    assert sorted(c["channel_id"] for c in stored["connections"]) == sorted(
        f"C{i}" for i in range(12)
    )


async def test_a_failing_change_writes_nothing_not_even_its_audit_entry(gateway: Gateway) -> None:
    world = await seed_world(gateway)
    env = world.slack.environment_id
    assert env is not None
    await gateway.channel_data.update(env, world.slack.id, TENANT, lambda _: {"connections": []})

    async def audit_count() -> int:
        async with gateway.engine.connect() as connection:
            query = (
                select(func.count())
                .select_from(audit_events)
                .where(audit_events.c.environment_id == env)
            )
            return int((await connection.execute(query)).scalar_one())

    before = await audit_count()

    def explode(_stored: dict[str, Any] | None) -> dict[str, Any]:
        raise RuntimeError("validation failed half way")

    with pytest.raises(RuntimeError):
        await gateway.channel_data.update(
            env,
            world.slack.id,
            TENANT,
            explode,
            lambda old, new: AuditEntry("channel_data.set", "test", environment_id=env),
        )
    assert await gateway.channel_data.get(env, world.slack.id, TENANT) == {"connections": []}
    assert await audit_count() == before


async def test_audit_entry_lands_with_the_change(gateway: Gateway) -> None:
    world = await seed_world(gateway)
    env = world.slack.environment_id
    assert env is not None
    await gateway.channel_data.update(
        env,
        world.slack.id,
        TENANT,
        lambda _: {"token": {"access_token": "xoxb-do-not-log"}},
        lambda old, new: AuditEntry(
            "install",
            "test",
            environment_id=env,
            channel_id=world.slack.id,
            target=TENANT.describe(),
        ),
    )
    events = await gateway.audit.recent(environment_id=env)
    assert events[0].entry.action == "install"
    assert events[0].entry.target == "objects/$tenants/acme"
    assert "xoxb" not in repr(events)


async def test_rows_hold_ciphertext_only(gateway: Gateway) -> None:
    world = await seed_world(gateway)
    env = world.slack.environment_id
    assert env is not None
    await gateway.channel_data.update(
        env, world.slack.id, TENANT, lambda _: {"token": {"access_token": "xoxb-plaintext-check"}}
    )
    async with gateway.engine.connect() as connection:
        rows = (await connection.execute(select(channel_data))).all()
    assert rows
    assert all("xoxb-plaintext-check" not in repr(row) for row in rows)
