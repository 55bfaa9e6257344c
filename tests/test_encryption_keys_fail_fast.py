"""No wrong key ever serves 500s: start-up refuses data the key ring cannot read, PostgreSQL
needs GATEWAY_ENCRYPTION_KEYS, and data that turns unreadable later is a 503 and unreadiness."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from provider_gateway.app import create_app
from provider_gateway.config import Secret, Settings
from provider_gateway.crypto import KeyRing, UndecryptableError
from provider_gateway.gateway import open_gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.key_check import EDGE_ROWS, check_all, check_sample
from provider_gateway.storage.schema import channel_data
from tests.conftest import KEY_A, KEY_B
from tests.support import free_port, seed_world, serve

TENANT = Recipient.object("$tenants", "acme")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provider_gateway", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str], *contains: str) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in contains:
        assert text in lines[0], lines[0]
    return lines[0]


async def _write_data(settings: Settings) -> None:
    async with open_gateway(settings, run_migrations=True) as gateway:
        world = await seed_world(gateway)
        environment = await gateway.environments.by_name(world.environment_name)
        assert environment is not None
        await gateway.channel_data.update(
            environment.id, world.slack.id, TENANT, lambda _: {"token": {"access_token": "x"}}
        )


def _env(settings: Settings, database_url: str, keys: str | None) -> dict[str, str]:
    return {
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_LOG_FORMAT": "text",
        "GATEWAY_ENCRYPTION_KEYS": keys or "",
    }


async def test_serve_refuses_to_start_with_a_key_that_reads_none_of_the_data(
    settings: Settings, database_url: str
) -> None:
    await _write_data(settings)
    result = _cli("serve", "--port", str(free_port()), env=_env(settings, database_url, KEY_B))
    _one_line(result, "GATEWAY_ENCRYPTION_KEYS", "does not decrypt")
    # The key that wrote it (also behind a new one) is accepted: the check is not a false alarm.
    async with open_gateway(settings, run_migrations=False) as gateway:
        assert (
            await check_sample(gateway.engine, KeyRing((Secret(KEY_B), Secret(KEY_A))))
        ).problem() is None


async def test_the_app_does_not_start_when_a_key_was_removed_after_data_was_written(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """Rotation started (B written first, data written under it), then B dropped again."""
    await _write_data(make_settings(GATEWAY_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"))
    with pytest.raises(UndecryptableError, match="GATEWAY_ENCRYPTION_KEYS"):
        await serve(aiohttp_client, create_app(make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A)))


@pytest.mark.postgres
@pytest.mark.parametrize("command", [("serve",), ("channels", "list"), ("migrate",)])
def test_postgresql_without_encryption_keys_stops_with_one_line(
    postgres_url: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_ENCRYPTION_KEYS": "",
        "GATEWAY_LOG_FORMAT": "text",
    }
    if command == ("serve",):
        command = ("serve", "--port", str(free_port()))
    _one_line(_cli(*command, env=env), "GATEWAY_ENCRYPTION_KEYS", "PostgreSQL")
    assert not (tmp_path / "data").exists()  # no key was generated for a shared database


async def test_data_unreadable_later_is_a_503_and_readyz_says_why(
    aiohttp_client: Callable[..., Any], settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    client = await serve(aiohttp_client, create_app(settings))
    async with open_gateway(settings, run_migrations=False) as gateway:
        world = await seed_world(gateway)
    assert (await client.get("/readyz")).status == 200
    # Another replica, configured with another key, writes this tenant's data.
    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B), run_migrations=False
    ) as other:
        environment = await other.environments.by_name(world.environment_name)
        assert environment is not None
        await other.channel_data.update(
            environment.id, world.slack.id, TENANT, lambda _: {"connections": []}
        )

    response = await client.get(
        f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}", headers=world.secret_headers()
    )

    assert response.status == 503
    body = await response.json()
    assert set(body) == {"code", "message", "status", "type"}
    assert body["status"] == 503
    assert "GATEWAY_ENCRYPTION_KEYS" in body["message"]
    ready = await client.get("/readyz")
    assert ready.status == 503
    readiness = await ready.json()
    assert readiness["checks"]["encryption_keys"] == "unreadable_data"
    assert "GATEWAY_ENCRYPTION_KEYS" in readiness["reason"]
    assert (await client.get("/healthz")).status == 200


async def test_the_start_up_sample_finds_rows_an_interrupted_rotation_left_behind(
    settings: Settings,
) -> None:
    async with open_gateway(settings, run_migrations=True) as gateway:
        world = await seed_world(gateway)
        environment = await gateway.environments.by_name(world.environment_name)
        assert environment is not None
        for index in range(4 * EDGE_ROWS):
            await gateway.channel_data.update(
                environment.id,
                world.slack.id,
                Recipient.object("$tenants", f"t{index}"),
                lambda _: {"connections": []},
            )
        ring = gateway.key_ring
        assert (await check_sample(gateway.engine, ring)).problem() is None
        # The newest rows are still under a key the ring no longer holds.
        foreign = KeyRing((Secret(KEY_B),)).encrypt(b'{"connections":[]}')
        async with gateway.engine.begin() as connection:
            newest = (
                await connection.execute(
                    channel_data.select().order_by(channel_data.c.id.desc()).limit(3)
                )
            ).all()
            for row in newest:
                await connection.execute(
                    update(channel_data)
                    .where(channel_data.c.id == row.id)
                    .values(payload_encrypted=foreign)
                )
        sampled = await check_sample(gateway.engine, ring)
        assert sampled.problem() is not None
        assert sampled.checked < 4 * EDGE_ROWS + 2  # a sample, not the whole table
        full = await check_all(gateway.engine, ring)
        assert (full.unreadable, full.checked) == (3, 4 * EDGE_ROWS + 2)
