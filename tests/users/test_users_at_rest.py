"""Users' personal data at rest: encrypted with the key ring, rotated with everything else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from provider_gateway.config import Settings
from provider_gateway.gateway import open_gateway
from provider_gateway.storage.rotation import rotate_encryption_key
from provider_gateway.users.models import merged
from tests.conftest import KEY_A, KEY_B

EMAIL = "ian.malcolm@chaos.theory"


async def test_rotation_covers_users_and_the_old_key_can_then_go(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A), run_migrations=True
    ) as gw:
        environment = await gw.environments.create(f"env-{uuid.uuid4().hex[:8]}", actor="test")
        await gw.users.merge(environment.id, "u-1", lambda stored: merged(stored, {"email": EMAIL}))

    both = make_settings(GATEWAY_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}")
    async with open_gateway(both, run_migrations=False) as gateway:
        report = await rotate_encryption_key(gateway.engine, gateway.key_ring, actor="test")
        assert report.rotated == 1  # the user's row: no channel or channel data exists

    async with open_gateway(
        make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_B), run_migrations=False
    ) as gw:
        user = await gw.users.get(environment.id, "u-1")
        assert user is not None
        assert user.properties == {"email": EMAIL}


async def test_no_plaintext_personal_data_in_the_sqlite_files(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    if not settings.is_sqlite:
        pytest.skip("files are SQLite's; PostgreSQL rows are checked in test_users_security.py")
    async with open_gateway(settings, run_migrations=True) as gateway:
        environment = await gateway.environments.create("env", actor="test")
        await gateway.users.merge(
            environment.id, "u-1", lambda stored: merged(stored, {"email": EMAIL})
        )
    database = Path(settings.database_url.reveal().removeprefix("sqlite:///"))
    raw = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert EMAIL.encode() not in raw
