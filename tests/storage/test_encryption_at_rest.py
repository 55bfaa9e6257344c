"""No plaintext token or client secret in the database, its files, or the logs; key rotation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from provider_gateway.config import Secret, Settings
from provider_gateway.crypto import UndecryptableError
from provider_gateway.gateway import open_gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.rotation import rotate_encryption_key
from tests.conftest import KEY_A, KEY_B

TOKEN = "xoxb-1234567890-plaintext-must-not-leak"
CLIENT_SECRET = "client-secret-plaintext-must-not-leak"
TENANT = Recipient.object("$tenants", "acme")


async def _store_secrets(settings: Settings) -> tuple[str, str]:
    async with open_gateway(settings, run_migrations=True) as gateway:
        environment = await gateway.environments.create(
            f"env-{uuid.uuid4().hex[:10]}", actor="test"
        )
        channel = await gateway.channels.add(
            provider="slack",
            client_id="1.2",
            client_secret=Secret(CLIENT_SECRET),
            environment_id=environment.id,
            actor="test",
        )
        await gateway.channel_data.update(
            environment.id,
            channel.id,
            TENANT,
            lambda _: {"connections": [], "token": {"access_token": TOKEN}},
        )
        return environment.id, channel.id


async def _dump_database(settings: Settings) -> str:
    dumped = []
    async with (
        open_gateway(settings, run_migrations=False) as gateway,
        gateway.engine.connect() as connection,
    ):
        for table in ("channels", "channel_data", "audit_events", "api_keys"):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            dumped.append(repr(rows))
    return "\n".join(dumped)


async def test_no_plaintext_in_tables_files_or_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _store_secrets(settings)
    dump = await _dump_database(settings)
    assert TOKEN not in dump
    assert CLIENT_SECRET not in dump
    if settings.is_sqlite:
        database_file = Path(settings.database_url.reveal().removeprefix("sqlite:///"))
        raw = b"".join(
            path.read_bytes()
            for path in database_file.parent.glob(database_file.name + "*")  # db, -wal, -shm
        )
        assert TOKEN.encode() not in raw
        assert CLIENT_SECRET.encode() not in raw
    assert TOKEN not in caplog.text
    assert CLIENT_SECRET not in caplog.text


async def test_rotation_write_a_restart_b_a_rotate_restart_b_only(
    make_settings: Callable[..., Settings],
) -> None:
    environment_id, channel_id = await _store_secrets(make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A))

    both = make_settings(GATEWAY_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")
    async with open_gateway(both, run_migrations=False) as gateway:
        report = await rotate_encryption_key(gateway.engine, gateway.key_ring, actor="test")
        assert report.rotated >= 2

        # Rotating again finds everything current.
        again = await rotate_encryption_key(gateway.engine, gateway.key_ring, actor="test")
        assert again.rotated == 0

    only_b = make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B)
    async with open_gateway(only_b, run_migrations=False) as gateway:
        stored = await gateway.channel_data.get(environment_id, channel_id, TENANT)
        assert stored == {"connections": [], "token": {"access_token": TOKEN}}
        channel = await gateway.channels.get(channel_id)
        assert channel is not None
        assert channel.client_secret.reveal() == CLIENT_SECRET


async def test_dropping_a_key_before_rotating_fails_loudly(
    make_settings: Callable[..., Settings],
) -> None:
    environment_id, channel_id = await _store_secrets(make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A))
    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B), run_migrations=False
    ) as gw:
        with pytest.raises(UndecryptableError):
            await gw.channel_data.get(environment_id, channel_id, TENANT)


async def test_rotation_while_the_service_writes_loses_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    """Writers (already on `B,A`) and the rotation race over the same rows."""
    recipients = [Recipient.object("projects", f"p{i}") for i in range(40)]
    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A), run_migrations=True
    ) as gw:
        environment = await gw.environments.create(f"env-{uuid.uuid4().hex[:10]}", actor="test")
        channel = await gw.channels.add(
            provider="slack",
            client_id="1",
            client_secret=Secret("s"),
            environment_id=environment.id,
            actor="test",
        )
        for recipient in recipients:
            await gw.channel_data.update(
                environment.id, channel.id, recipient, lambda _: {"connections": []}
            )

    def add_connection(stored: dict[str, Any] | None) -> dict[str, Any]:
        assert stored is not None
        return {"connections": [*stored["connections"], {"channel_id": "C-new"}]}

    both = make_settings(GATEWAY_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")
    async with open_gateway(both, run_migrations=False) as gw:
        writes = [
            gw.channel_data.update(environment.id, channel.id, recipient, add_connection)
            for recipient in recipients
        ]
        await asyncio.gather(rotate_encryption_key(gw.engine, gw.key_ring, actor="test"), *writes)

    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B), run_migrations=False
    ) as gw:
        for recipient in recipients:
            stored = await gw.channel_data.get(environment.id, channel.id, recipient)
            assert stored == {"connections": [{"channel_id": "C-new"}]}
