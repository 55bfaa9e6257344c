"""The gateway served on a real loopback port from its own thread and event loop, wired to the
fake Slack and Entra/Graph, for clients that block (schemathesis calls it with requests)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import trustme
from aiohttp import web

from provider_gateway.app import RUNNER_OPTIONS, create_app
from provider_gateway.config import load_settings
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import ALLOWED_ORIGIN, KEY_A
from tests.fakes.microsoft import FakeMicrosoft
from tests.fakes.slack import FakeSlack
from tests.support import World, seed_world

T = TypeVar("T")
TENANT_ID = "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d"
TEAM = "T0001"
CONNECTED = "acme"


@dataclass
class ServedGateway:
    base_url: str
    world: World
    slack: FakeSlack
    microsoft: FakeMicrosoft
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the gateway's loop (its database engine lives there)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def reconnect(self) -> None:
        """Connect the tenant again (an earlier revoke_access may have disconnected it)."""
        self.run(_connect(self.base_url, self.world, self.slack.mint_token(TEAM)))


async def _site(
    app: web.Application,
    scheme: str = "http",
    context: ssl.SSLContext | None = None,
    **options: Any,
) -> tuple[web.AppRunner, str]:
    """`app` on a free loopback port; its runner and base URL."""
    runner = web.AppRunner(app, **options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{scheme}://127.0.0.1:{port}"


async def _connect(base_url: str, world: World, slack_token: str) -> None:
    """The tenant `acme` holds a Slack token and a Teams tenant id, as an operator may set."""
    async with aiohttp.ClientSession(headers=world.secret_headers()) as session:
        for channel_id, data in (
            (world.slack.id, {"token": {"access_token": slack_token}, "connections": []}),
            (world.teams.id, {"ms_teams_tenant_id": TENANT_ID, "connections": []}),
        ):
            url = f"{base_url}/v1/objects/$tenants/{CONNECTED}/channel_data/{channel_id}"
            async with session.put(url, json={"data": data}) as response:
                assert response.status == 200, await response.text()


@contextmanager
def served_gateway(database_url: str, tmp_path: Path) -> Iterator[ServedGateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)

    runners: list[web.AppRunner] = []

    async def start() -> ServedGateway:
        authority = trustme.CA()
        bundle = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(bundle))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        slack, microsoft = FakeSlack(), FakeMicrosoft()
        slack_runner, slack_url = await _site(slack.app)
        login_runner, login_url = await _site(microsoft.login_app, "https", context)
        graph_runner, graph_url = await _site(microsoft.graph_app, "https", context)
        runners.extend([slack_runner, login_runner, graph_runner])
        slack.api_url = f"{slack_url}/api/"
        slack.add_workspace(TEAM, 5)
        microsoft.login_url, microsoft.graph_url = login_url, graph_url
        settings = load_settings(
            {
                "GATEWAY_DATA_DIR": str(tmp_path / "data"),
                "GATEWAY_DATABASE_URL": database_url,
                "GATEWAY_ENCRYPTION_KEYS": KEY_A,
                "GATEWAY_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
                "GATEWAY_LOG_FORMAT": "text",
                "GATEWAY_RATE_LIMITS": "off",
                "SLACK_API_URL": slack.api_url,
                "MS_LOGIN_URL": login_url,
                "MS_GRAPH_URL": graph_url,
                "GATEWAY_CA_BUNDLE": str(bundle),
                "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "5",
            }
        )
        app = create_app(settings)
        gateway_runner, base_url = await _site(app, **RUNNER_OPTIONS)
        runners.insert(0, gateway_runner)
        world = await seed_world(app[GATEWAY])
        slack.register_app(world.slack.client_id, world.slack.client_secret.reveal(), "A0TEST")
        microsoft.register_app(world.teams.client_id, world.teams.client_secret.reveal())
        microsoft.consent(world.teams.client_id, TENANT_ID)
        microsoft.add_teams(TENANT_ID, 2)
        await _connect(base_url, world, slack.mint_token(TEAM))
        return ServedGateway(base_url, world, slack, microsoft, loop)

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    try:
        yield run(start())
    finally:
        run(stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
