"""GATEWAY_CHANNELS_FILE: a sidecar starts configured from a TOML file (e.g. a mounted Secret)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from knockapi import AsyncKnock
from sqlalchemy import func, select

from provider_gateway.app import create_app
from provider_gateway.config import ConfigError, Settings
from provider_gateway.declared import apply_channels_file, load_channels_file
from provider_gateway.errors import Conflict
from provider_gateway.gateway import open_gateway
from provider_gateway.keys import new_api_key, new_signing_key
from provider_gateway.storage.schema import audit_events, signing_keys
from provider_gateway.web.appkeys import GATEWAY
from tests.support import World, free_port, object_uri, serve

SLACK_ID = "8b5f2c1e-3d4a-4f6b-9c1d-2e3f4a5b6c7d"
CHANNEL = f'[[channels]]\nid = "{SLACK_ID}"\nclient_id = "a"\nclient_secret = "b"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"channels-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(text)
    return path


def _file(public_key: str, secret_key: str, signing_pem: str, secret: str = "first-secret") -> str:
    return f'''
[[environments]]
name = "production"
[[environments.keys]]
public_key = "{public_key}"
secret_key = "{secret_key}"
signing_key = """{signing_pem}"""

[[channels]]
id = "{SLACK_ID}"
provider = "slack"
client_id = "123.456"
client_secret = "{secret}"
app_id = "A0123"
environment = "production"
'''


async def test_service_starts_configured_from_the_file(
    aiohttp_client: Callable[..., object], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    pk, sk, signing = new_api_key("public"), new_api_key("secret"), new_signing_key()
    path = _write(tmp_path, _file(pk, sk, signing.private_pem))
    app = create_app(make_settings(GATEWAY_CHANNELS_FILE=str(path)))
    client = await serve(aiohttp_client, app)

    async with AsyncKnock(api_key=sk, base_url=str(client.make_url("")), max_retries=0) as knock:
        stored = await knock.objects.set_channel_data(
            "projects", "p1", SLACK_ID, data={"connections": [{"channel_id": "C1"}]}
        )
    assert stored.channel_id == SLACK_ID

    gateway = client.app[GATEWAY]
    channel = await gateway.channels.get(SLACK_ID)
    assert channel is not None
    assert channel.client_secret.reveal() == "first-secret"
    world = World(gateway, "production", pk, sk, signing.private_pem, channel, channel)
    token = world.user_token(grants={object_uri("projects", "p1"): {"channel_data/read": [{}]}})
    response = await client.get(
        f"/v1/objects/projects/p1/channel_data/{SLACK_ID}", headers=world.public_headers(token)
    )
    assert response.status == 200


async def test_applying_again_is_idempotent_and_updates_what_changed(
    settings: Settings, tmp_path: Path
) -> None:
    pk, sk, signing = new_api_key("public"), new_api_key("secret"), new_signing_key()
    first = load_channels_file(_write(tmp_path, _file(pk, sk, signing.private_pem)))
    async with open_gateway(settings, run_migrations=True) as gateway:
        await apply_channels_file(gateway, first)

        async def count(table: object) -> int:
            async with gateway.engine.connect() as connection:
                query = select(func.count()).select_from(table)  # type: ignore[arg-type]
                return int((await connection.execute(query)).scalar_one())

        before = (await count(signing_keys), await count(audit_events))
        await apply_channels_file(gateway, first)
        assert (await count(signing_keys), await count(audit_events)) == before

        rotated = load_channels_file(
            _write(tmp_path, _file(pk, sk, signing.private_pem, secret="second-secret"))
        )
        await apply_channels_file(gateway, rotated)
        channel = await gateway.channels.get(SLACK_ID)
        assert channel is not None
        assert channel.client_secret.reveal() == "second-secret"
        events = await gateway.audit.recent()
        assert events[0].entry.action == "channel.updated"
        assert "second-secret" not in repr(events)


async def test_a_key_of_another_environment_is_refused(settings: Settings, tmp_path: Path) -> None:
    pk, sk, signing = new_api_key("public"), new_api_key("secret"), new_signing_key()
    async with open_gateway(settings, run_migrations=True) as gateway:
        await apply_channels_file(
            gateway, load_channels_file(_write(tmp_path, _file(pk, sk, signing.private_pem)))
        )
        other = _file(pk, sk, signing.private_pem).replace('"production"', '"staging"')
        with pytest.raises(Conflict, match="already belongs to environment 'production'"):
            await apply_channels_file(gateway, load_channels_file(_write(tmp_path, other)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[channels]\n", "not valid TOML"),
        (
            '[[channels]]\nid = "nope"\nprovider = "slack"\nclient_id = "a"\nclient_secret = "b"\n',
            "channels.0.id",
        ),
        (CHANNEL + 'provider = "discord"\n', "channels.0.provider"),
        (
            '[[environments]]\nname = "p"\n[[environments.keys]]\npublic_key = "sk_x"\n',
            "environments.0.keys.0.public_key",
        ),
        (
            '[[environments]]\nname = "p"\n[[environments.keys]]\nsecret_key = "sk_..."\n',
            "environments.0.keys.0.secret_key: must be a real key",
        ),
        (
            '[[environments]]\nname = "p"\n[[environments.keys]]\nsecret_key = "sk_1"\n',
            "must be a real key",
        ),
        (
            '[[environments]]\nname = "p"\n[[environments.keys]]\npublic_key = "pk_'
            + "x" * 40
            + '"\n',
            "must be a real key",
        ),
        (
            '[[environments]]\nname = "p"\n[[environments.keys]]\nsecret_key = "sk_'
            + "abcdefghijklmnop!@#$%^&*()abcdefghijkl"
            + '"\n',
            "must be a real key",
        ),
        (
            '[[environments]]\nname = "p"\n[[environments.keys]]\nsigning_key = "not a pem"\n',
            "GATEWAY_CHANNELS_FILE",
        ),
        (CHANNEL + 'provider = "slack"\nenvironment = "ghost"\n', "not declared"),
        ("surprise = 1\n", "surprise"),
        (CHANNEL.replace('client_secret = "b"\n', "") + 'provider = "slack"\n', "exactly one"),
        (CHANNEL + 'provider = "slack"\nclient_certificate = "x"\n', "exactly one"),
        (
            CHANNEL.replace('client_secret = "b"\n', 'client_certificate = "x"\n')
            + 'provider = "slack"\n',
            "for ms-teams",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_the_variable(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_channels_file(_write(tmp_path, text))
    assert str(raised.value).startswith("GATEWAY_CHANNELS_FILE: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_serve_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[channels]]\nid = "nope"\n')
    result = subprocess.run(
        [sys.executable, "-m", "provider_gateway", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_CHANNELS_FILE": str(path),
            "GATEWAY_LOG_FORMAT": "text",
        },
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("provider-gateway: error: GATEWAY_CHANNELS_FILE: channels.0")
    )
    assert "Traceback" not in result.stderr
