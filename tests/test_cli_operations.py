"""Operating with the CLI alone (CONTRACT §4): list, revoke, update, remove, see who is
connected; help and errors an operator can act on. Run as subprocesses, as operators do."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provider_gateway.cli import build_parser
from provider_gateway.config import load_settings
from provider_gateway.gateway import open_gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.schema import audit_events
from provider_gateway.tenant_credentials import store_credential
from tests.conftest import Run
from tests.support import cli_json, one_line_error

SLACK_TOKEN = "xoxb-cli-must-never-print-this"
TEAMS_TENANT = "0b9f6a3e-7c1d-4e2f-8a5b-6c7d8e9f0a1b"


def _add(run: Run, provider: str, client_id: str, secret: str = "s") -> Any:
    return cli_json(
        run("channels", "add", provider, "--client-id", client_id, "--client-secret", secret)
    )


def test_version_is_the_installed_package_version(run: Run) -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"provider-gateway {version('provider-gateway')}"


@pytest.mark.parametrize("args", [(), ("keys",), ("channels",)])
def test_a_bare_command_prints_its_help_and_exits_2(run: Run, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout.startswith(f"usage: provider-gateway{''.join(' ' + a for a in args)}")


def test_every_option_has_help_that_names_its_default() -> None:
    missing = []
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
                continue
            if not action.option_strings or action.dest in {"help", "version"}:
                continue
            text = parser.formatter_class(parser.prog)._get_help_string(action)  # type: ignore[attr-defined]
            if not action.help or ("default" not in text and not action.required):
                missing.append(f"{parser.prog} {action.option_strings[0]}")
    assert not missing


def test_help_loads_neither_the_http_stack_nor_the_database(tmp_path: Path) -> None:
    probe = (
        "import sys; from provider_gateway.cli import build_parser; build_parser().format_help(); "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    for heavy in ("aiohttp", "sqlalchemy", "alembic", "msal", "slack_sdk", "cryptography"):
        assert f"'{heavy}'" not in loaded


def test_channels_list_loads_no_http_stack_or_client_library(run: Run) -> None:
    cli_json(run("migrate"))
    result = run("-X", "importtime", "-m", "provider_gateway", "channels", "list", python=True)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    for heavy in ("aiohttp", "alembic", "msal", "slack_sdk", "prometheus_client", "yaml"):
        assert heavy not in imported


def test_environments_list(run: Run, tmp_path: Path) -> None:
    name = f"listed-{tmp_path.name[-8:]}".replace("_", "-")
    created = cli_json(run("environments", "create", name))
    listed = cli_json(run("environments", "list"))
    assert {"name": name, "id": created["id"], "created_at": created["created_at"]} in listed


def test_keys_create_list_and_revoke(run: Run, tmp_path: Path) -> None:
    name = f"keys-{tmp_path.name[-8:]}".replace("_", "-")
    cli_json(run("environments", "create", name))
    first, second = (cli_json(run("keys", "create", "--environment", name)) for _ in range(2))
    listed = {pair["id"]: pair for pair in cli_json(run("keys", "list", "--environment", name))}
    assert listed[first["id"]] == {
        "id": first["id"],
        "public_key": first["public_key"],
        "secret_key_hint": first["secret_key"][-4:],
        "created_at": listed[first["id"]]["created_at"],
        "revoked_at": None,
    }
    assert first["secret_key"] not in json.dumps(listed)

    revoked = cli_json(run("keys", "revoke", first["id"]))
    assert revoked["revoked_at"] is not None
    assert cli_json(run("keys", "revoke", first["id"]))["revoked_at"] == revoked["revoked_at"]
    listed = {pair["id"]: pair for pair in cli_json(run("keys", "list", "--environment", name))}
    assert listed[first["id"]]["revoked_at"] == revoked["revoked_at"]
    assert listed[second["id"]]["revoked_at"] is None
    one_line_error(run("keys", "revoke", str(uuid.uuid4())), "no key pair with id")
    audited = cli_json(run("audit", "--environment", name, "--action", "api_keys.revoked"))
    assert [entry["details"]["pair_id"] for entry in audited] == [first["id"]]


def test_channels_show_and_update(run: Run, cli_env: dict[str, str]) -> None:
    channel = cli_json(
        run("channels", "add", "slack", "--client-id", "1.1", "--client-secret", "old")
    )
    assert cli_json(run("channels", "show", channel["id"])) == channel

    updated = cli_json(
        run(
            "channels", "update", channel["id"], "--client-id", "2.2", "--client-secret", "-",
            "--app-id", "A2", stdin="new-secret-from-stdin\n",
        )
    )  # fmt: skip
    assert (updated["client_id"], updated["app_id"]) == ("2.2", "A2")
    assert "new-secret-from-stdin" not in json.dumps(updated)
    shown = cli_json(run("channels", "show", channel["id"]))
    assert (shown["client_id"], shown["app_id"]) == ("2.2", "A2")
    audited = cli_json(run("audit", "--channel", channel["id"], "--action", "channel.updated"))
    assert audited[0]["details"]["changed"] == ["app_id", "client_id", "client_secret"]
    assert "new-secret" not in json.dumps(audited)
    one_line_error(run("channels", "update", channel["id"]), "nothing to change")
    one_line_error(run("channels", "show", str(uuid.uuid4())), "no channel with id")


def test_an_entra_client_id_must_be_a_guid(run: Run) -> None:
    one_line_error(
        run("channels", "add", "ms-teams", "--client-id", "my-app", "--client-secret", "s"),
        "--client-id 'my-app' is not an Entra application (client) id",
    )
    guid = str(uuid.uuid4())
    teams = cli_json(
        run("channels", "add", "ms-teams", "--client-id", guid.upper(), "--client-secret", "s")
    )
    assert teams["client_id"] == guid
    one_line_error(run("channels", "update", teams["id"], "--client-id", "nope"), "is not an Entra")


async def _connect_tenants(cli_env: dict[str, str], slack_id: str, teams_id: str) -> None:
    async with open_gateway(load_settings(cli_env), run_migrations=False) as gateway:
        environment = await gateway.environments.create(f"e-{uuid.uuid4().hex[:8]}", actor="t")
        slack, teams = await gateway.channels.get(slack_id), await gateway.channels.get(teams_id)
        assert slack is not None
        assert teams is not None
        token = {"access_token": SLACK_TOKEN, "team_id": "T01", "team_name": "Acme"}
        for channel, value in ((slack, token), (teams, TEAMS_TENANT)):
            await store_credential(
                gateway,
                environment_id=environment.id,
                channel=channel,
                tenant=Recipient.object("$tenants", "acme"),
                value=value,
                actor="test",
                details={},
            )
        # Connections without a credential are not a connected tenant.
        await gateway.channel_data.update(
            environment.id,
            slack.id,
            Recipient.object("$tenants", "globex"),
            lambda _: {"connections": [{"channel_id": "C1"}]},
        )


async def test_tenants_list_and_channels_remove(run: Run, cli_env: dict[str, str]) -> None:
    slack = cli_json(run("channels", "add", "slack", "--client-id", "3.3", "--client-secret", "s"))
    teams = cli_json(
        run("channels", "add", "ms-teams", "--client-id", str(uuid.uuid4()), "--client-secret", "s")
    )
    await _connect_tenants(cli_env, slack["id"], teams["id"])

    listed = run("tenants", "list", "--channel", slack["id"])
    assert SLACK_TOKEN not in listed.stdout
    [tenant] = cli_json(listed)
    assert tenant["collection"] == "$tenants"
    assert tenant["object_id"] == "acme"
    assert (tenant["team_id"], tenant["team_name"], tenant["enterprise_id"]) == (
        "T01",
        "Acme",
        None,
    )
    assert tenant["connected_at"]
    [teams_tenant] = cli_json(run("tenants", "list", "--channel", teams["id"]))
    assert teams_tenant["ms_teams_tenant_id"] == TEAMS_TENANT

    one_line_error(run("channels", "remove", slack["id"]), "1 tenant is connected")
    assert cli_json(run("channels", "show", slack["id"]))["id"] == slack["id"]  # nothing removed
    assert len(cli_json(run("tenants", "list", "--channel", slack["id"]))) == 1

    removed = cli_json(run("channels", "remove", slack["id"], "--force"))
    assert removed == {
        "id": slack["id"],
        "removed": True,
        "channel_data_removed": 2,
        "connected_tenants_removed": 1,
    }
    one_line_error(run("channels", "show", slack["id"]), "no channel with id")
    settings = load_settings(cli_env)
    async with (
        open_gateway(settings, run_migrations=False) as gateway,
        gateway.engine.connect() as connection,
    ):
        details = (
            await connection.execute(
                select(audit_events.c.details).where(audit_events.c.action == "channel.removed")
            )
        ).scalar_one()
    assert details["forced"] is True
    assert details["connected"] == 1


def test_removing_a_channel_nobody_connected_needs_no_force(run: Run) -> None:
    channel = cli_json(
        run("channels", "add", "slack", "--client-id", "4.4", "--client-secret", "s")
    )
    assert cli_json(run("channels", "remove", channel["id"]))["channel_data_removed"] == 0


def test_a_taken_port_is_one_line_naming_the_next(run: Run) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))
    one_line_error(result, f"cannot listen on 127.0.0.1:{port}")
    assert f"try --port {port + 1}" in result.stderr


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_port_out_of_range_names_the_flag(run: Run, port: str) -> None:
    one_line_error(run("serve", "--port", port), "argument --port")


def test_an_unreachable_database_is_named(run: Run) -> None:
    result = run("channels", "list", GATEWAY_DATABASE_URL="postgresql://gw:pw@127.0.0.1:1/none")
    one_line_error(result, "cannot reach the database at postgresql://gw:***@127.0.0.1:1/none")
    assert "pw" not in result.stderr


def test_a_read_only_command_creates_no_database(run: Run, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    result = run(
        "channels", "list", GATEWAY_DATA_DIR=str(elsewhere), GATEWAY_DATABASE_URL="", keys=""
    )
    one_line_error(result, f"no database at {elsewhere / 'gateway.db'}")
    assert not elsewhere.exists()


def test_the_readme_documents_every_command() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for row in re.findall(r"^\| `provider-gateway ([^`]*)`(?: / `([^`]*)`)?", table, re.M):
        for cell in row:
            words = [w for w in cell.split() if re.fullmatch(r"[a-z][a-z-]*", w)]
            if words:
                documented.add(" ".join(words[:2]) if len(words) > 1 else words[0])
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    known = set()
    for name, sub in commands.choices.items():
        actions = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        known |= {f"{name} {action}" for action in actions[0].choices} if actions else {name}
    assert known <= documented, known - documented
