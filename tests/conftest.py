"""Fixtures: every storage-backed test runs on SQLite (embedded) and on the local PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet

from provider_gateway.app import create_app
from provider_gateway.config import Settings, load_settings
from provider_gateway.gateway import Gateway, open_gateway
from provider_gateway.web.appkeys import GATEWAY
from tests.storage.private_postgres import PrivatePostgres, private_postgres
from tests.support import World, seed_world, serve

# The server the suite creates its databases on (one per test); `scripts/test` makes sure it is up.
ADMIN_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
ALLOWED_ORIGIN = "http://app.example.test"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _admin(sql: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(ADMIN_POSTGRES_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped after it."""
    name = f"gateway_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_cluster() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own, which it may stop and start (mark the test
    `postgres`)."""
    with private_postgres() as cluster:
        yield cluster


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: str) -> Settings:
        env = {
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_ENCRYPTION_KEYS": KEY_A,
            "GATEWAY_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
            "GATEWAY_LOG_FORMAT": "text",
            # Rate limits at their defaults: secret keys unlimited, public keys per user.
        }
        env.update(overrides)
        return load_settings(env)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async with open_gateway(settings, run_migrations=True) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: Callable[..., object], settings: Settings) -> TestClient:
    return await serve(aiohttp_client, create_app(settings))


@pytest.fixture
async def world(client: TestClient) -> World:
    return await seed_world(client.app[GATEWAY])


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment an operator's CLI runs with: this test's database and KEY_A."""
    return {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENCRYPTION_KEYS": KEY_A,
        "GATEWAY_LOG_FORMAT": "text",
    }


@pytest.fixture
def run(cli_env: dict[str, str]) -> Run:
    """`provider-gateway ARGS` as a subprocess (`python=True`: ARGS go to the interpreter)."""

    def run(
        *args: str, keys: str = KEY_A, stdin: str | None = None, python: bool = False, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, **cli_env, "GATEWAY_ENCRYPTION_KEYS": keys, **env}
        command = (
            [sys.executable, *args] if python else [sys.executable, "-m", "provider_gateway", *args]
        )
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=environ,
            input=stdin,
            timeout=60,
            check=False,
        )

    return run
