"""Settings for running at scale: the PostgreSQL pool and statement timeout, audit retention."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from provider_gateway.app import create_app
from provider_gateway.config import ConfigError, DatabasePool, load_settings
from provider_gateway.storage.database import create_engine
from tests.conftest import KEY_A
from tests.support import serve


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.audit_retention_days == 365
    assert settings.database_pool == DatabasePool(
        size=10, max_overflow=10, timeout_seconds=10.0, statement_timeout_seconds=30.0
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_AUDIT_RETENTION_DAYS", "-1"),
        ("GATEWAY_AUDIT_RETENTION_DAYS", "a year"),
        ("GATEWAY_DATABASE_POOL_SIZE", "0"),
        ("GATEWAY_DATABASE_MAX_OVERFLOW", "-2"),
        ("GATEWAY_DATABASE_POOL_TIMEOUT_SECONDS", "0"),
        ("GATEWAY_DATABASE_STATEMENT_TIMEOUT_SECONDS", "-1"),
        ("GATEWAY_DATABASE_STATEMENT_TIMEOUT_SECONDS", "inf"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert str(raised.value).startswith(f"{variable}: ")


@pytest.mark.postgres
async def test_the_pool_settings_reach_postgresql(postgres_url: str) -> None:
    settings = load_settings(
        {
            "GATEWAY_DATABASE_URL": postgres_url,
            "GATEWAY_DATABASE_POOL_SIZE": "3",
            "GATEWAY_DATABASE_MAX_OVERFLOW": "2",
            "GATEWAY_DATABASE_POOL_TIMEOUT_SECONDS": "4.5",
            "GATEWAY_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1.5",
        }
    )
    engine = create_engine(settings)
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 2, 4.5)
        async with engine.connect() as connection:
            shown = (await connection.execute(text("SHOW statement_timeout"))).scalar_one()
        assert shown == "1500ms"
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_the_start_up_summary_names_the_pool_settings(
    postgres_url: str,
    tmp_path: Path,
    aiohttp_client: Callable[..., object],
) -> None:
    from provider_gateway.serving import startup_summary

    settings = load_settings(
        {
            "GATEWAY_DATA_DIR": str(tmp_path),
            "GATEWAY_DATABASE_URL": postgres_url,
            "GATEWAY_ENCRYPTION_KEYS": KEY_A,
            "GATEWAY_DATABASE_POOL_SIZE": "4",
        }
    )
    client = await serve(aiohttp_client, create_app(settings))
    summary = await startup_summary(client.app)
    assert summary["database_pool"] == (
        "pool_size=4 max_overflow=10 pool_timeout=10s statement_timeout=30s"
    )
