"""`provider-gateway serve` on SIGTERM: stops accepting, lets in-flight requests finish, exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
from cryptography.fernet import Fernet

from provider_gateway.keys import new_api_key
from tests.fakes.slack import Failure, FakeSlack
from tests.slack.conftest import TEAM
from tests.support import free_port

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


async def test_sigterm_drains_in_flight_requests(fake_slack: FakeSlack, tmp_path: Path) -> None:
    secret_key, channel_id = new_api_key("secret"), str(uuid.uuid4())
    fake_slack.register_app("111.222", "drain-secret")
    channels_file = tmp_path / "channels.toml"
    channels_file.write_text(
        '[[environments]]\nname = "production"\n[[environments.keys]]\n'
        f'secret_key = "{secret_key}"\n'
        f'[[channels]]\nid = "{channel_id}"\nprovider = "slack"\nclient_id = "111.222"\n'
        'client_secret = "drain-secret"\nenvironment = "production"\n'
    )
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "GATEWAY_CHANNELS_FILE": str(channels_file),
        "SLACK_API_URL": fake_slack.api_url,
        "GATEWAY_LOG_FORMAT": "text",
    }
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("wb")
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "provider_gateway", "serve", "--port", str(port)),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log_file,
    )
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {secret_key}"}
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with session.put(
                f"{base}/v1/objects/$tenants/acme/channel_data/{channel_id}",
                json={"data": {"token": {"access_token": fake_slack.mint_token(TEAM)}}},
                headers=headers,
            ) as response:
                assert response.status == 200, await response.text()

            fake_slack.fail_next("conversations.list", Failure(status=200, delay=1.5))
            slow = asyncio.ensure_future(
                session.get(
                    f"{base}/v1/providers/slack/{channel_id}/channels",
                    params={"access_token_object": TENANT},
                    headers=headers,
                )
            )
            await asyncio.sleep(0.4)  # the request is now waiting on the slow upstream
            server.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status == 200
            assert len((await response.json())["slack_channels"]) == 30
        exit_code = await asyncio.wait_for(server.wait(), 20)
        assert exit_code == 0, log_path.read_text()
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        log_file.close()
