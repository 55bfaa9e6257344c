"""Everything the browser suite runs against, on real loopback ports.

- the fake Slack (Web API + authorize page) over HTTP;
- the fake Entra login and Graph over TLS (msal insists on https; the gateway trusts a
  trustme CA through GATEWAY_CA_BUNDLE), and its admin-consent page over plain HTTP for the
  browser, which does not trust that CA; the sign-in page the gateway sends the popup to is
  the TLS one at MS_LOGIN_URL, whose certificate alone Chromium is told to accept;
- the gateway, exactly as `provider-gateway serve` runs it (SQLite, Knock's rate limits on),
  with GATEWAY_PUBLIC_URL = its own origin and GATEWAY_ALLOWED_ORIGINS = the app's origin;
- the app: the Vite build of tests/e2e/app plus the /config.json its "backend" hands out
  (pk_ key and a user token signed with the environment's signing key).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization

from provider_gateway.app import RUNNER_OPTIONS, create_app
from provider_gateway.config import load_settings
from provider_gateway.models import Channel, Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft
from tests.fakes.slack import FakeSlack
from tests.support import World, free_port, object_uri, seed_world, tenant_uri

E2E_DIR = Path(__file__).resolve().parent
DIST_DIR = E2E_DIR / "dist"

SLACK_TEAM = "T0E2E"
TENANT = "acme-e2e"  # the Knock tenant both integrations connect
RECIPIENT = Recipient.object("projects", "dinosaurs-loose")  # the object the comboboxes fill
USER_ID = "user-e2e"
USER = {"id": USER_ID, "name": "Dr. Ellie Sattler", "email": "ellie@isla-nublar.test"}
TEAMS_TEAM_COUNT = 3
TEAMS_CHANNEL_COUNT = 5  # the fake makes #3 private and #4 archived: the gateway hides both
SLACK_PICK = ["channel-00001", "channel-00004"]  # what the person picks in each combobox
TEAMS_PICK = ["General", "Channel 2"]


@dataclass
class Stack:
    world: World
    slack: FakeSlack
    microsoft: FakeMicrosoft
    gateway_url: str
    app_url: str
    slack_url: str
    consent_url: str
    user_token: str
    tls_spki: str  # the fakes' TLS certificate, as Chromium pins it

    @property
    def tenant(self) -> Recipient:
        return Recipient.object("$tenants", TENANT)

    async def stored(self, channel: Channel, recipient: Recipient) -> dict[str, Any] | None:
        """Channel data as stored (decrypted) by the gateway, read from its store directly."""
        assert channel.environment_id is not None
        return await self.world.gateway.channel_data.get(
            channel.environment_id, channel.id, recipient
        )

    def page_config(self) -> dict[str, Any]:
        """What the app's backend gives its page: no secret key, a signed user token."""
        return {
            "gatewayUrl": self.gateway_url,
            "publicKey": self.world.public_key,
            "userId": USER_ID,
            "user": USER,  # what KnockProvider identifies (id plus properties)
            "userToken": self.user_token,
            "tenantId": TENANT,
            "recipient": {"collection": RECIPIENT.collection, "objectId": RECIPIENT.id},
            "redirectUrl": f"{self.app_url}/settings/integrations",
            "slack": {"channelId": self.world.slack.id, "clientId": self.world.slack.client_id},
            "teams": {"channelId": self.world.teams.id, "clientId": self.world.teams.client_id},
        }

    def slack_channel_names(self) -> list[str]:
        return sorted(channel["name"] for channel in self.slack.channels[SLACK_TEAM])

    def slack_channel_id(self, name: str) -> str:
        return next(c["id"] for c in self.slack.channels[SLACK_TEAM] if c["name"] == name)

    def teams_teams(self) -> list[dict[str, Any]]:
        """The teams of the directory whose admin consents on the fake's page."""
        return self.microsoft.teams[self.microsoft.consent_tenant]

    def teams_channels(self, team_id: str) -> list[dict[str, Any]]:
        """The channels TeamsKit may offer: Graph's minus private and archived ones."""
        return [
            channel
            for channel in self.microsoft.channels[team_id]
            if channel["membershipType"] == "standard" and not channel["isArchived"]
        ]


def _spki_pin(certificate_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _user_token(world: World) -> str:
    """Grants as Knock's docs sign them for SlackKit and TeamsKit."""
    return world.user_token(
        USER_ID,
        grants={
            tenant_uri(TENANT): {"slack/channels_read": [{}], "ms_teams/channels_read": [{}]},
            object_uri(RECIPIENT.collection, RECIPIENT.id): {
                "channel_data/read": [{}],
                "channel_data/write": [{}],
            },
        },
    )


def _app_server(config: dict[str, Any]) -> web.Application:
    if not (DIST_DIR / "index.html").is_file():
        raise AssertionError(f"{DIST_DIR}/index.html is missing: run tests/e2e/setup first")
    index = (DIST_DIR / "index.html").read_text()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=index, content_type="text/html")

    async def config_json(_request: web.Request) -> web.Response:
        return web.json_response(config, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/config.json", config_json)
    app.router.add_static("/assets", DIST_DIR / "assets")
    app.router.add_get("/{path:.*}", page)  # the SPA's routes, /settings/integrations included
    return app


async def _start(
    exits: AsyncExitStack, app: web.Application, *, port: int | None = None, **kwargs: Any
) -> TestServer:
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server(**kwargs)
    exits.push_async_callback(server.close)
    return server


def _origin(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@asynccontextmanager
async def running_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        authority = trustme.CA()
        ca_bundle = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_bundle))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf = authority.issue_cert("127.0.0.1", "localhost")
        leaf.configure_cert(tls)

        slack = FakeSlack()
        slack_server = await _start(exits, slack.app)
        slack.api_url = str(slack_server.make_url("/api/"))
        slack.add_workspace(SLACK_TEAM, 6)

        microsoft = FakeMicrosoft()
        login = await _start(exits, microsoft.login_app, ssl=tls)
        graph = await _start(exits, microsoft.graph_app, ssl=tls)
        consent = await _start(exits, microsoft.consent_app)
        microsoft.login_url, microsoft.graph_url = _origin(login), _origin(graph)
        microsoft.add_teams(microsoft.consent_tenant, TEAMS_TEAM_COUNT)
        for team in microsoft.teams[microsoft.consent_tenant]:
            microsoft.add_channels(team["id"], TEAMS_CHANNEL_COUNT)

        gateway_port, app_port = free_port(), free_port()
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        app_url = f"http://127.0.0.1:{app_port}"
        settings = load_settings(
            {
                "GATEWAY_DATA_DIR": str(tmp_path / "data"),
                "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
                "GATEWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "GATEWAY_PUBLIC_URL": gateway_url,
                "GATEWAY_ALLOWED_ORIGINS": app_url,
                "GATEWAY_CA_BUNDLE": str(ca_bundle),
                "SLACK_API_URL": slack.api_url,
                "MS_LOGIN_URL": microsoft.login_url,
                "MS_GRAPH_URL": microsoft.graph_url,
                "GATEWAY_LOG_FORMAT": "text",
                "GATEWAY_LOG_LEVEL": "warning",
            }
        )
        gateway_app = create_app(settings)
        await _start(exits, gateway_app, port=gateway_port, **RUNNER_OPTIONS)

        world = await seed_world(gateway_app[GATEWAY], "e2e")
        slack.register_app(
            world.slack.client_id,
            world.slack.client_secret.reveal(),
            world.slack.app_id or "A0TEST",
            redirect_url=f"{gateway_url}/providers/slack/authenticate",
        )
        microsoft.register_app(
            world.teams.client_id,
            world.teams.client_secret.reveal(),
            redirect_uris=(f"{gateway_url}/providers/ms-teams/authenticate",),
        )
        stack = Stack(
            world=world,
            slack=slack,
            microsoft=microsoft,
            gateway_url=gateway_url,
            app_url=app_url,
            slack_url=_origin(slack_server),
            consent_url=_origin(consent),
            user_token=_user_token(world),
            tls_spki=_spki_pin(leaf.cert_chain_pems[0].bytes()),
        )
        await _start(exits, _app_server(stack.page_config()), port=app_port)
        yield stack


def write_config(stack: Stack, path: Path, **extra: Any) -> Path:
    """The JSON the node scripts read: the page's config, where the fakes are, and what a
    person should see and pick (the names the fakes serve)."""
    page = stack.page_config()
    team = stack.teams_teams()[0]
    config = {
        **page,
        "appUrl": stack.app_url,
        "fakes": {
            "slack": stack.slack_url,
            "microsoftConsent": stack.consent_url,
            # MS_LOGIN_URL: the gateway sends the popup to its sign-in page, over TLS.
            "microsoftLogin": stack.microsoft.login_url,
            "microsoftLoginSpki": stack.tls_spki,
        },
        "slack": {
            **page["slack"],
            "channelNames": stack.slack_channel_names(),
            "pick": SLACK_PICK,
            "pickIds": [stack.slack_channel_id(name) for name in SLACK_PICK],
        },
        "teams": {
            **page["teams"],
            "teamNames": sorted(t["displayName"] for t in stack.teams_teams()),
            "team": team["displayName"],
            "teamId": team["id"],
            "channelNames": sorted(c["displayName"] for c in stack.teams_channels(team["id"])),
            "pick": TEAMS_PICK,
            "directory": stack.microsoft.consent_tenant,  # the Entra tenant id consent yields
        },
        **extra,
    }
    path.write_text(json.dumps(config, indent=2))
    return path


async def _serve_forever() -> None:
    """`python -m tests.e2e.stack`: run the stack by hand to poke at it or at the node scripts
    (`E2E_NO_HANDSHAKE=1 node tests/e2e/browser.mjs tests/e2e/output/config.json`)."""
    with tempfile.TemporaryDirectory() as scratch:
        async with running_stack(Path(scratch)) as stack:
            output = E2E_DIR / "output"
            output.mkdir(exist_ok=True)
            config = write_config(stack, output / "config.json", screenshotDir=str(output))
            print(f"app: {stack.app_url}  gateway: {stack.gateway_url}  config: {config}")
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve_forever())
