"""The blind index of Slack installs: events find their rows by index, across key rotations,
and rows written before the index existed are backfilled by `migrate`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import column, select, table
from sqlalchemy.engine import Connection

from provider_gateway.config import Secret, Settings
from provider_gateway.crypto import KeyRing
from provider_gateway.gateway import Gateway, open_gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.blind_index import BlindIndex
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.database import _alembic_config, migrate
from provider_gateway.storage.rotation import rotate_encryption_key
from provider_gateway.storage.schema import channel_data, channels, environments
from tests.conftest import KEY_A, KEY_B


def _token(team_id: str, **extra: Any) -> Callable[[Any], dict[str, Any]]:
    return lambda _: {"token": {"access_token": f"xoxb-{team_id}", "team_id": team_id, **extra}}


async def _setup(gateway: Gateway) -> tuple[str, str]:
    environment = await gateway.environments.create(f"env-{uuid.uuid4().hex[:8]}", actor="t")
    channel = await gateway.channels.add(
        provider="slack",
        client_id="1.2",
        client_secret=Secret("s"),
        environment_id=environment.id,
        actor="t",
    )
    return environment.id, channel.id


async def _found(gateway: Gateway, channel_id: str, team_id: str) -> set[str]:
    rows = await gateway.channel_data.for_slack_install(
        channel_id, team_id=team_id, enterprise_id=None
    )
    return {recipient.id for _, recipient, _ in rows}


async def test_lookup_finds_only_the_workspaces_rows(gateway: Gateway) -> None:
    environment_id, channel_id = await _setup(gateway)
    for tenant, team in (("acme", "T1"), ("beta", "T1"), ("gamma", "T2"), ("teams", "")):
        change = _token(team) if team else (lambda _: {"connections": []})
        await gateway.channel_data.update(
            environment_id, channel_id, Recipient.object("$tenants", tenant), change
        )
    assert await _found(gateway, channel_id, "T1") == {"acme", "beta"}
    assert await _found(gateway, channel_id, "T2") == {"gamma"}
    assert await _found(gateway, channel_id, "T3") == set()
    org = await gateway.channel_data.for_slack_install(channel_id, team_id=None, enterprise_id="E1")
    assert org == []


async def test_org_installs_are_found_by_enterprise(gateway: Gateway) -> None:
    environment_id, channel_id = await _setup(gateway)
    acme = Recipient.object("$tenants", "acme")
    await gateway.channel_data.update(
        environment_id,
        channel_id,
        acme,
        _token("T9", enterprise_id="E1", is_enterprise_install=True),
    )
    # A workspace install inside the same Grid org is matched by its team, not the org.
    beta = Recipient.object("$tenants", "beta")
    await gateway.channel_data.update(
        environment_id, channel_id, beta, _token("T8", enterprise_id="E1")
    )
    rows = await gateway.channel_data.for_slack_install(
        channel_id, team_id=None, enterprise_id="E1"
    )
    assert [recipient for _, recipient, _ in rows] == [acme]


async def test_rows_indexed_before_and_after_a_key_rotation_are_found(
    make_settings: Callable[..., Settings],
) -> None:
    acme, beta = Recipient.object("$tenants", "acme"), Recipient.object("$tenants", "beta")
    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A), run_migrations=True
    ) as gw:
        environment_id, channel_id = await _setup(gw)
        await gw.channel_data.update(environment_id, channel_id, acme, _token("T1"))

    both = make_settings(GATEWAY_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")
    async with open_gateway(both, run_migrations=False) as gw:
        await gw.channel_data.update(environment_id, channel_id, beta, _token("T1"))
        assert await _found(gw, channel_id, "T1") == {"acme", "beta"}  # indexed under A and B
        await rotate_encryption_key(gw.engine, gw.key_ring, actor="test")
        key_ids = await _key_ids(gw)
        assert key_ids == {BlindIndex(gw.key_ring).current_key_id}

    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B), run_migrations=False
    ) as gw:
        assert await _found(gw, channel_id, "T1") == {"acme", "beta"}  # re-indexed under B


async def test_rows_from_before_the_index_are_found_then_backfilled(settings: Settings) -> None:
    """Rows written by a gateway older than the index (schema 0002): found by the events
    fallback until `migrate` indexes them, and indexed (and encrypted) under the newest key."""
    async with open_gateway(settings, run_migrations=False) as gw:
        async with gw.engine.begin() as connection:
            await connection.run_sync(_upgrade_to("0002"))
            environment_id, channel_id = str(uuid.uuid4()), str(uuid.uuid4())
            await connection.execute(
                environments.insert().values(id=environment_id, name="old", created_at=utcnow())
            )
            await connection.execute(
                channels.insert().values(
                    id=channel_id,
                    provider="slack",
                    client_id="1.2",
                    client_secret_encrypted=gw.key_ring.encrypt(b"s"),
                    created_at=utcnow(),
                )
            )
            for number, team in enumerate(("T1", "T2")):
                await connection.execute(
                    _old_row(environment_id, channel_id, f"t{number}", gw.key_ring, team)
                )
            await connection.run_sync(_upgrade_to("head"))
        assert await _key_ids(gw) == {None}
        found = await gw.channel_data.for_slack_install(
            channel_id, team_id="T1", enterprise_id=None
        )
        assert {recipient.id for _, recipient, _ in found} == {"t0", "t1"}  # unindexed: all

        await migrate(gw.engine, gw.key_ring)
        assert await _key_ids(gw) == {BlindIndex(gw.key_ring).current_key_id}
        assert await _found(gw, channel_id, "T1") == {"t0"}
        assert await migrate(gw.engine, gw.key_ring) is not None  # nothing left: a no-op


def _old_row(environment_id: str, channel_id: str, tenant: str, ring: KeyRing, team: str) -> Any:
    """A channel_data row as a gateway at schema 0002 wrote it (no index columns)."""
    old = table(
        "channel_data",
        *(
            column(name)
            for name in (
                "environment_id",
                "channel_id",
                "recipient_kind",
                "collection",
                "recipient_id",
                "payload_encrypted",
                "version",
                "created_at",
                "updated_at",
            )
        ),
    )
    return old.insert().values(
        environment_id=environment_id,
        channel_id=channel_id,
        recipient_kind="object",
        collection="$tenants",
        recipient_id=tenant,
        payload_encrypted=ring.encrypt(f'{{"token": {{"team_id": "{team}"}}}}'.encode()),
        version=1,
        created_at=utcnow(),
        updated_at=utcnow(),
    )


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    return lambda connection: command.upgrade(_alembic_config(connection), revision)


async def _key_ids(gateway: Gateway) -> set[str | None]:
    async with gateway.engine.connect() as connection:
        return set((await connection.execute(select(channel_data.c.key_id))).scalars())
