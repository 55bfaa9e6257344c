"""The `provider-gateway` CLI as operators run it: a subprocess, JSON out, one-line errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from provider_gateway.config import load_settings
from provider_gateway.keys import hash_api_key
from provider_gateway.storage.database import create_engine
from tests.conftest import KEY_A, KEY_B, Run
from tests.support import cli_json, one_line_error


def test_operator_setup_flow(run: Run, tmp_path: Path) -> None:
    name = f"prod-{tmp_path.name[-8:]}".replace("_", "-")
    assert cli_json(run("migrate"))["migrated"] is True
    environment = cli_json(run("environments", "create", name))
    assert environment["name"] == name

    keys = cli_json(run("keys", "create", "--environment", name))
    assert keys["environment"] == name
    assert keys["public_key"].startswith("pk_")
    assert keys["secret_key"].startswith("sk_")
    assert keys["signing_key"].startswith("-----BEGIN PRIVATE KEY-----")

    channel_id = str(uuid.uuid4())
    slack = cli_json(
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
    teams = cli_json(
        run(
            "channels",
            "add",
            "ms-teams",
            "--client-id",
            "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
            "--client-secret",
            "graph-secret-xyz",
        )
    )
    assert teams["provider"] == "ms-teams"
    assert teams["environment"] is None

    listed = run("channels", "list")
    ids = {channel["id"] for channel in cli_json(listed)}
    assert {slack["id"], teams["id"]} <= ids
    assert "cli-client-secret-xyz" not in listed.stdout
    assert "graph-secret-xyz" not in listed.stdout


async def test_keys_are_stored_as_hashes_only(
    run: Run, cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"hash-{tmp_path.name[-8:]}".replace("_", "-")
    cli_json(run("environments", "create", name))
    keys = cli_json(run("keys", "create", "--environment", name))
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
    one_line_error(run(*args), message)


def test_bad_configuration_is_one_line_naming_the_variable(run: Run) -> None:
    one_line_error(
        run("channels", "list", GATEWAY_CACHE_TTL_SECONDS="often"), "GATEWAY_CACHE_TTL_SECONDS"
    )


def test_unreachable_database_is_one_line(run: Run) -> None:
    result = run("migrate", GATEWAY_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    one_line_error(result, "cannot reach")


def test_duplicate_environment_is_one_line(run: Run, tmp_path: Path) -> None:
    name = f"dup-{tmp_path.name[-8:]}".replace("_", "-")
    cli_json(run("environments", "create", name))
    one_line_error(run("environments", "create", name), "already exists")


def test_rotate_encryption_key_command(run: Run) -> None:
    cli_json(run("channels", "add", "slack", "--client-id", "r1", "--client-secret", "rotate-me"))
    report = cli_json(run("rotate-encryption-key", keys=f"{KEY_B},{KEY_A}"))
    assert report["rotated"] >= 1
    assert cli_json(run("rotate-encryption-key", keys=KEY_B))["rotated"] == 0  # B alone reads all
    # The old key alone can no longer read what was rotated, and says so in one line.
    one_line_error(run("rotate-encryption-key", keys=KEY_A), "GATEWAY_ENCRYPTION_KEYS")
