"""`provider-gateway doctor` against the fake Slack and the fake Entra (TLS, trustme): each
misconfiguration it can detect is named on its own line; --json; exit 1 on any failure."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provider_gateway.config import Secret, Settings
from provider_gateway.doctor import Check, diagnose
from provider_gateway.gateway import open_gateway
from provider_gateway.models import Recipient
from tests.conftest import KEY_B
from tests.fakes.microsoft import FakeMicrosoft
from tests.fakes.slack import FakeSlack
from tests.ms_teams.conftest import ca_bundle, certificate_authority, fake_microsoft
from tests.slack.conftest import fake_slack

__all__ = ["ca_bundle", "certificate_authority", "fake_microsoft", "fake_slack"]
TENANT = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    fake_microsoft: FakeMicrosoft,
    ca_bundle: Path,
) -> Settings:
    return make_settings(
        SLACK_API_URL=fake_slack.api_url,
        MS_LOGIN_URL=fake_microsoft.login_url,
        MS_GRAPH_URL=fake_microsoft.graph_url,
        GATEWAY_CA_BUNDLE=str(ca_bundle),
        GATEWAY_PUBLIC_URL="https://gateway.example.com",
        GATEWAY_UPSTREAM_TIMEOUT_SECONDS="5",
    )


async def _channels(
    settings: Settings, fake_slack: FakeSlack, fake_microsoft: FakeMicrosoft
) -> dict[str, str]:
    """One channel per outcome; returns their ids by name."""
    fake_slack.register_app("1.1", "right-secret")
    good_teams, wrong_secret_teams = str(uuid.uuid4()), str(uuid.uuid4())
    for client_id in (good_teams, wrong_secret_teams):
        fake_microsoft.register_app(client_id, "graph-secret")
        fake_microsoft.consent(client_id, TENANT)
    apps = {
        "slack_ok": ("slack", "1.1", "right-secret"),
        "slack_bad_secret": ("slack", "1.1", "wrong-secret"),
        "slack_unknown_app": ("slack", "9.9", "whatever"),
        "teams_ok": ("ms-teams", good_teams, "graph-secret"),
        "teams_bad_secret": ("ms-teams", wrong_secret_teams, "not-the-secret"),
        "teams_unknown_app": ("ms-teams", str(uuid.uuid4()), "graph-secret"),
        "teams_unconnected": ("ms-teams", good_teams, "graph-secret"),
    }
    ids = {}
    async with open_gateway(settings, run_migrations=True) as gateway:
        environment = await gateway.environments.create("doctor", actor="test")
        for name, (provider, client_id, secret) in apps.items():
            channel = await gateway.channels.add(
                provider=provider,  # type: ignore[arg-type]
                client_id=client_id,
                client_secret=Secret(secret),
                actor="test",
            )
            ids[name] = channel.id
            if provider == "ms-teams" and name != "teams_unconnected":
                await gateway.channel_data.update(
                    environment.id,
                    channel.id,
                    Recipient.object("$tenants", "acme"),
                    lambda _: {"ms_teams_tenant_id": TENANT, "connections": []},
                )
    return ids


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def test_each_app_credential_is_checked_against_its_provider(
    settings: Settings, fake_slack: FakeSlack, fake_microsoft: FakeMicrosoft
) -> None:
    ids = await _channels(settings, fake_slack, fake_microsoft)

    checks = _by_name(await diagnose(settings))

    def channel(name: str) -> Check:
        return checks[f"channel {ids[name]}"]

    assert channel("slack_ok").status == "ok"
    assert "accepted by Slack" in channel("slack_ok").detail
    assert channel("slack_bad_secret").status == "fail"
    assert "bad_client_secret" in channel("slack_bad_secret").detail
    assert channel("slack_unknown_app").status == "fail"
    assert "invalid_client_id" in channel("slack_unknown_app").detail
    assert channel("teams_ok").status == "ok"
    assert TENANT in channel("teams_ok").detail
    assert channel("teams_bad_secret").status == "fail"
    assert "AADSTS7000215" in channel("teams_bad_secret").detail
    assert channel("teams_unknown_app").status == "fail"
    assert "AADSTS700016" in channel("teams_unknown_app").detail
    assert channel("teams_unconnected").status == "warn"
    assert "no tenant connected" in channel("teams_unconnected").detail
    # The dummy code is all Slack saw; nothing was installed anywhere.
    assert {call.params.get("code") for call in fake_slack.calls_to("oauth.v2.access")} == {
        "provider-gateway-doctor-not-a-code"
    }
    assert checks["database"].status == "ok"
    assert checks["encryption_keys"].status == "ok"
    assert checks["public_url"].extra["redirect_uris"] == {
        "slack": "https://gateway.example.com/providers/slack/authenticate",
        "ms-teams": "https://gateway.example.com/providers/ms-teams/authenticate",
    }


async def _doctor(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    environ = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.database_url.reveal(),
        "GATEWAY_ENCRYPTION_KEYS": ",".join(k.reveal() for k in settings.encryption_keys),
        "SLACK_API_URL": settings.slack_api_url,
        "MS_LOGIN_URL": settings.ms_login_url,
        "MS_GRAPH_URL": settings.ms_graph_url,
        "GATEWAY_CA_BUNDLE": str(settings.ca_bundle),
        "GATEWAY_PUBLIC_URL": settings.public_url or "",
        "GATEWAY_ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
        "GATEWAY_LOG_FORMAT": "text",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "provider_gateway",
        "doctor",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_prints_one_line_per_check_and_exits_1_on_a_failure(
    settings: Settings, fake_slack: FakeSlack, fake_microsoft: FakeMicrosoft
) -> None:
    ids = await _channels(settings, fake_slack, fake_microsoft)

    code, out, err = await _doctor(settings)

    assert code == 1
    assert "Traceback" not in err
    lines = out.strip().splitlines()
    assert lines[0].startswith("ok    database: ")
    assert f"fail  channel {ids['slack_bad_secret']}: " in out
    assert f"ok    channel {ids['teams_ok']}: " in out
    assert all(line.split()[0] in {"ok", "warn", "fail"} for line in lines)
    assert "wrong-secret" not in out
    assert "graph-secret" not in out

    code, out, _ = await _doctor(settings, "--json")
    assert code == 1
    listed = json.loads(out)
    assert {entry["status"] for entry in listed} == {"ok", "warn", "fail"}
    assert all(set(entry) >= {"check", "status", "detail"} for entry in listed)


async def test_a_healthy_deployment_exits_0(settings: Settings, fake_slack: FakeSlack) -> None:
    fake_slack.register_app("2.2", "fine")
    async with open_gateway(settings, run_migrations=True) as gateway:
        await gateway.channels.add(
            provider="slack", client_id="2.2", client_secret=Secret("fine"), actor="test"
        )
    code, out, _ = await _doctor(settings)
    assert code == 0, out
    assert "fail" not in out


@pytest.mark.parametrize(
    ("env", "name", "status", "words"),
    [
        ({"GATEWAY_PUBLIC_URL": "http://gateway.example.com"}, "public_url", "fail", "https"),
        ({"GATEWAY_PUBLIC_URL": "http://127.0.0.1:8080"}, "public_url", "ok", "register"),
        ({"GATEWAY_PUBLIC_URL": ""}, "public_url", "warn", "GATEWAY_PUBLIC_URL unset"),
        ({"GATEWAY_ALLOWED_ORIGINS": ""}, "allowed_origins", "warn", "CORS"),
        ({"GATEWAY_ENCRYPTION_KEYS": KEY_B}, "encryption_keys", "fail", "does not decrypt"),
        ({"GATEWAY_REDIS_URL": "redis://127.0.0.1:1/0"}, "redis", "fail", "does not answer"),
        ({"GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis", "ok", "answers"),
    ],
)
async def test_each_setting_is_checked(
    make_settings: Callable[..., Settings],
    settings: Settings,
    env: dict[str, str],
    name: str,
    status: str,
    words: str,
) -> None:
    async with open_gateway(settings, run_migrations=True) as gateway:
        await gateway.channels.add(
            provider="slack", client_id="3.3", client_secret=Secret("s"), actor="test"
        )
    overrides: dict[str, Any] = {
        "SLACK_API_URL": settings.slack_api_url,
        "GATEWAY_PUBLIC_URL": settings.public_url,
        **env,
    }
    checks = _by_name(await diagnose(make_settings(**overrides)))
    assert checks[name].status == status, checks[name]
    assert words in checks[name].detail


async def test_an_unreachable_database_is_a_failed_check_not_a_traceback(
    settings: Settings,
) -> None:
    code, out, err = await _doctor(
        settings, GATEWAY_DATABASE_URL="postgresql://gw:secret@127.0.0.1:1/none"
    )
    assert code == 1
    assert out.startswith("fail  database: postgresql://gw:***@127.0.0.1:1/none unreachable")
    assert "secret@" not in out
    assert "Traceback" not in err


async def test_doctor_creates_no_database_and_no_key(settings: Settings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    code, out, _ = await _doctor(
        settings,
        GATEWAY_DATA_DIR=str(elsewhere),
        GATEWAY_DATABASE_URL="",
        GATEWAY_ENCRYPTION_KEYS="",
    )
    assert code == 1
    assert f"fail  database: no database at {elsewhere / 'gateway.db'}" in out
    assert not elsewhere.exists()
