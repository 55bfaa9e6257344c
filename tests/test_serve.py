"""`provider-gateway serve` as a process: one start-up summary line, ready, stopped by SIGTERM;
and the heavy client libraries stay unloaded until something uses them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from yarl import URL

from provider_gateway.config import Secret, Settings
from provider_gateway.gateway import open_gateway
from tests.conftest import KEY_A
from tests.support import free_port

READY_SECONDS = 60.0


def _ready(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise AssertionError("serve did not become ready")


def _with_password(database_url: str) -> str:
    """The same database with a password in the URL (trust auth ignores it), to be masked."""
    url = URL(database_url)
    return str(url.with_password("hunter2")) if url.scheme.startswith("postgres") else database_url


async def _seed(settings: Settings) -> None:
    async with open_gateway(settings, run_migrations=True) as gateway:
        for name in ("one", "two"):
            await gateway.environments.create(f"{name}-{uuid.uuid4().hex[:6]}", actor="test")
        await gateway.channels.add(
            provider="slack", client_id="1.1", client_secret=Secret("s"), actor="test"
        )


def test_serve_logs_one_summary_line_and_stops_on_sigterm(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    asyncio.run(_seed(settings))
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": _with_password(database_url),
        "GATEWAY_ENCRYPTION_KEYS": KEY_A,
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_CACHE_TTL_SECONDS": "45",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "provider_gateway", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _ready(port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "hunter2" not in stderr
    records = [json.loads(line) for line in stderr.splitlines()]
    [summary] = [record for record in records if "starting" in record["msg"]]
    assert summary["public_url"] == f"http://127.0.0.1:{port}"
    assert summary["database"].startswith(
        "postgresql://postgres:***@" if database_url.startswith("postgres") else "sqlite:////"
    )
    assert summary["redis"] == "none (in-process)"
    assert summary["encryption_keys"] == "1 (GATEWAY_ENCRYPTION_KEYS)"
    assert (summary["environments"], summary["channels"]) == (2, 1)
    assert summary["cache_ttl_seconds"] == 45
    assert summary["rate_limits"].startswith("knock (1=1/s 2=5/s")
    assert summary["upstream_pacing"] == "on (max wait 5s)"
    assert summary["data_dir"] == str(tmp_path / "data")
    assert f"public_url=http://127.0.0.1:{port}" in summary["msg"]
    assert any(
        record["msg"] == f"ready: listening on http://127.0.0.1:{port}" for record in records
    )


def test_starting_the_app_loads_no_client_library_before_it_is_used(
    settings: Settings, tmp_path: Path
) -> None:
    """Alembic only when the schema is behind; slack-sdk, msal, requests, redis-py and yaml
    only for the calls that need them (serving.warm_imports loads some once ready)."""
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.database_url.reveal(),
        "GATEWAY_ENCRYPTION_KEYS": KEY_A,
    }
    subprocess.run(
        [sys.executable, "-m", "provider_gateway", "migrate"], env=env, check=True, timeout=60
    )
    probe = """
import asyncio, sys
from aiohttp import web
from provider_gateway.app import create_app
from provider_gateway.config import load_settings

async def start() -> None:
    runner = web.AppRunner(create_app(load_settings()))
    await runner.setup()
    await runner.cleanup()

asyncio.run(start())
print(sorted({name.split(".")[0] for name in sys.modules}))
"""
    loaded = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    for heavy in ("alembic", "slack_sdk", "msal", "requests", "redis", "yaml"):
        assert f"'{heavy}'" not in loaded.stdout
