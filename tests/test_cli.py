"""The `provider-gateway` CLI as operators run it: a subprocess, JSON out, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from provider_gateway.config import load_settings
from provider_gateway.keys import hash_api_key
from provider_gateway.storage.database import create_engine
from tests.conftest import KEY_A, KEY_B

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENCRYPTION_KEYS": KEY_A,
        "GATEWAY_LOG_FORMAT": "text",
    }


@pytest.fixture
def run(cli_env: dict[str, str]) -> Run:
    def run(
        *args: str, keys: str = KEY_A, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, **cli_env, "GATEWAY_ENCRYPTION_KEYS": keys, **env}
        return subprocess.run(
            [sys.executable, "-m", "provider_gateway", *args],
            capture_output=True,
            text=True,
            env=environ,
            input=stdin,
            timeout=60,
            check=False,
        )

    return run


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _one_line_error(result: subprocess.CompletedProcess[str], contains: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert contains in lines[0]


def test_operator_setup_flow(run: Run, tmp_path: Path) -> None:
    name = f"prod-{tmp_path.name[-8:]}".replace("_", "-")
    assert _json(run("migrate"))["migrated"] is True
    environment = _json(run("environments", "create", name))
    assert environment["name"] == name

    keys = _json(run("keys", "create", "--environment", name))
    assert keys["environment"] == name
    assert keys["public_key"].startswith("pk_")
    assert keys["secret_key"].startswith("sk_")
    assert keys["signing_key"].startswith("-----BEGIN PRIVATE KEY-----")

    channel_id = str(uuid.uuid4())
    slack = _json(
        run(
            "channels",
            "add",
            "slack",
            "--client-id",
            "111.222",
            "--client-secret",
            "-",
            "--app-id",
            "A1",
            "--environment",
            name,
            "--id",
            channel_id.upper(),
            stdin="cli-client-secret-xyz\n",
        )
    )
    assert slack["id"] == channel_id
    assert slack["provider"] == "slack"
    assert slack["environment"] == name
    teams = _json(
        run(
            "channels",
            "add",
            "ms-teams",
            "--client-id",
            "c-id",
            "--client-secret",
            "graph-secret-xyz",
        )
    )
    assert teams["provider"] == "ms-teams"
    assert teams["environment"] is None

    listed = run("channels", "list")
    ids = {channel["id"] for channel in _json(listed)}
    assert {slack["id"], teams["id"]} <= ids
    assert "cli-client-secret-xyz" not in listed.stdout
    assert "graph-secret-xyz" not in listed.stdout


async def test_keys_are_stored_as_hashes_only(
    run: Run, cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"hash-{tmp_path.name[-8:]}".replace("_", "-")
    _json(run("environments", "create", name))
    keys = _json(run("keys", "create", "--environment", name))
    engine = create_engine(load_settings(cli_env))
    try:
        async with engine.connect() as connection:
            dump = repr((await connection.execute(text("SELECT * FROM api_keys"))).all())
            dump += repr((await connection.execute(text("SELECT * FROM signing_keys"))).all())
    finally:
        await engine.dispose()
    assert keys["secret_key"] not in dump
    assert keys["public_key"] not in dump
    assert hash_api_key(keys["secret_key"]) in dump
    assert hash_api_key(keys["public_key"]) in dump
    assert "PRIVATE KEY" not in dump
    assert "PUBLIC KEY" in dump


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("keys", "create", "--environment", "no-such-env"), "no environment named 'no-such-env'"),
        (("keys", "create"), "--environment"),
        (("environments", "create", "bad name!"), "environment name"),
        (
            ("channels", "add", "discord", "--client-id", "x", "--client-secret", "y"),
            "invalid choice",
        ),
        (
            (
                "channels",
                "add",
                "slack",
                "--client-id",
                "x",
                "--client-secret",
                "y",
                "--id",
                "nope",
            ),
            "not a UUID",
        ),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(run: Run, args: tuple[str, ...], message: str) -> None:
    _one_line_error(run(*args), message)


def test_bad_configuration_is_one_line_naming_the_variable(run: Run) -> None:
    _one_line_error(
        run("channels", "list", GATEWAY_CACHE_TTL_SECONDS="often"), "GATEWAY_CACHE_TTL_SECONDS"
    )


def test_unreachable_database_is_one_line(run: Run) -> None:
    result = run("migrate", GATEWAY_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    _one_line_error(result, "cannot reach")


def test_duplicate_environment_is_one_line(run: Run, tmp_path: Path) -> None:
    name = f"dup-{tmp_path.name[-8:]}".replace("_", "-")
    _json(run("environments", "create", name))
    _one_line_error(run("environments", "create", name), "already exists")


def test_rotate_encryption_key_command(run: Run) -> None:
    _json(run("channels", "add", "slack", "--client-id", "r1", "--client-secret", "rotate-me"))
    report = _json(run("rotate-encryption-key", keys=f"{KEY_B},{KEY_A}"))
    assert report["rotated"] >= 1
    assert _json(run("rotate-encryption-key", keys=KEY_B))["rotated"] == 0  # B alone reads all
    # The old key alone can no longer read what was rotated, and says so in one line.
    _one_line_error(run("rotate-encryption-key", keys=KEY_A), "GATEWAY_ENCRYPTION_KEYS")
