"""Runs the demo: simulators on loopback, a throwaway database and keys, the gateway, a page."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from ssl import SSLContext
from typing import TextIO

from aiohttp import web
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import RSAKey

from provider_gateway.app import RUNNER_OPTIONS, create_app
from provider_gateway.auth import (
    CHANNEL_DATA_READ,
    CHANNEL_DATA_WRITE,
    MS_TEAMS_CHANNELS_READ,
    SLACK_CHANNELS_READ,
)
from provider_gateway.config import Secret, Settings, load_settings
from provider_gateway.demo.certificates import issue_loopback_tls
from provider_gateway.demo.microsoft_simulator import MicrosoftSimulator
from provider_gateway.demo.page import PageConfig, SlackSetup, TeamsSetup, page_routes
from provider_gateway.demo.slack_simulator import SCOPES, SlackSimulator
from provider_gateway.failures import port_taken
from provider_gateway.gateway import open_gateway
from provider_gateway.serving import warm_imports
from provider_gateway.web.logs import configure_logging

LOOPBACK = "127.0.0.1"
TENANT = "acme-demo"
USER = "demo-user"
ACTOR = "demo"
TOKEN_LIFETIME_SECONDS = 24 * 3600
SHUTDOWN_SECONDS = 5.0


@dataclass(frozen=True)
class DemoKeys:
    public_key: str
    secret_key: str
    user_token: str
    slack_channel_id: str
    teams_channel_id: str


@dataclass(frozen=True)
class SimulatorUrls:
    slack: str  # Web API and authorize page
    consent: str  # Microsoft's admin-consent page (plain HTTP, for the browser)
    microsoft_api: str  # Entra and Graph over TLS


def run_demo(port: int, *, log_level: str = "info", out: TextIO = sys.stdout) -> int:
    asyncio.run(_demo(port, log_level, out))
    return 0


async def _demo(port: int, log_level: str, out: TextIO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    public_url = f"http://{LOOPBACK}:{port}"
    slack = SlackSimulator(
        client_id=f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}",
        client_secret=secrets.token_hex(16),
        app_id="A0DEMOAPP",
        redirect_url=f"{public_url}/providers/slack/authenticate",
    )
    microsoft = MicrosoftSimulator(
        client_id=str(uuid.uuid4()),
        client_secret=secrets.token_urlsafe(30),
        redirect_url=f"{public_url}/providers/ms-teams/authenticate",
    )
    with tempfile.TemporaryDirectory(prefix="provider-gateway-demo-") as scratch:
        directory = Path(scratch)
        tls = issue_loopback_tls(directory)
        async with AsyncExitStack() as stack:
            urls = SimulatorUrls(
                slack=await stack.enter_async_context(_loopback_site(slack.app())),
                consent=await stack.enter_async_context(_loopback_site(microsoft.consent_app())),
                microsoft_api=await stack.enter_async_context(
                    _loopback_site(microsoft.api_app(), tls.server_context())
                ),
            )
            microsoft.api_url = urls.microsoft_api
            settings = _settings(directory, public_url, tls.ca_bundle, urls, log_level)
            configure_logging(settings)
            keys = await _seed(settings, slack, microsoft)
            app = create_app(settings)
            app.add_routes(page_routes(_page_config(keys, slack, microsoft, urls), port))
            runner = web.AppRunner(app, **RUNNER_OPTIONS, shutdown_timeout=SHUTDOWN_SECONDS)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            try:
                await web.TCPSite(runner, LOOPBACK, port).start()
            except OSError as error:
                raise port_taken(LOOPBACK, port, error) from None
            out.write(_banner(public_url, keys, urls, directory))
            out.flush()
            warm_imports()
            await stop.wait()
            out.write("Stopping: draining requests and deleting the demo's data.\n")
            out.flush()


def _settings(
    directory: Path, public_url: str, ca_bundle: Path, urls: SimulatorUrls, log_level: str
) -> Settings:
    """The demo's own configuration, validated like any other: nothing from the environment.

    The admin's sign-in page is the simulator's plain-HTTP site, which a visitor's browser
    opens without a certificate warning; msal still talks to its TLS site (MS_LOGIN_URL).
    """
    settings = load_settings(
        {
            "GATEWAY_DATA_DIR": str(directory),
            "GATEWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "GATEWAY_PUBLIC_URL": public_url,
            "GATEWAY_CA_BUNDLE": str(ca_bundle),
            "SLACK_API_URL": f"{urls.slack}/api/",
            "MS_LOGIN_URL": urls.microsoft_api,
            "MS_GRAPH_URL": urls.microsoft_api,
            "GATEWAY_LOG_LEVEL": log_level,
            "GATEWAY_LOG_FORMAT": "text",
        }
    )
    return dataclasses.replace(settings, ms_browser_login_url=urls.consent)


def _page_config(
    keys: DemoKeys, slack: SlackSimulator, microsoft: MicrosoftSimulator, urls: SimulatorUrls
) -> PageConfig:
    return PageConfig(
        public_key=keys.public_key,
        user_token=keys.user_token,
        tenant=TENANT,
        slack=SlackSetup(
            channel_id=keys.slack_channel_id,
            client_id=slack.client_id,
            scope=SCOPES,
            authorize_url=f"{urls.slack}/oauth/v2/authorize",
        ),
        teams=TeamsSetup(
            channel_id=keys.teams_channel_id,
            client_id=microsoft.client_id,
            consent_url=f"{urls.consent}/organizations/adminconsent",
            redirect_uri=microsoft.redirect_url,
        ),
    )


@asynccontextmanager
async def _loopback_site(
    app: web.Application, ssl_context: SSLContext | None = None
) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its origin."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOOPBACK, 0, ssl_context=ssl_context).start()
        _, port = runner.addresses[0][:2]
        yield f"{'https' if ssl_context else 'http'}://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


async def _seed(
    settings: Settings, slack: SlackSimulator, microsoft: MicrosoftSimulator
) -> DemoKeys:
    async with open_gateway(settings, run_migrations=True) as gateway:
        environment = await gateway.environments.create("demo", actor=ACTOR)
        issued = await gateway.credentials.issue(environment, actor=ACTOR)
        slack_channel = await gateway.channels.add(
            provider="slack",
            client_id=slack.client_id,
            client_secret=Secret(slack.client_secret),
            app_id=slack.app_id,
            environment_id=environment.id,
            actor=ACTOR,
        )
        teams_channel = await gateway.channels.add(
            provider="ms-teams",
            client_id=microsoft.client_id,
            client_secret=Secret(microsoft.client_secret),
            environment_id=environment.id,
            actor=ACTOR,
        )
    return DemoKeys(
        public_key=issued.public_key,
        secret_key=issued.secret_key,
        user_token=_user_token(issued.signing_key_pem),
        slack_channel_id=slack_channel.id,
        teams_channel_id=teams_channel.id,
    )


def _user_token(signing_key_pem: str) -> str:
    """What the app's backend would sign for its logged-in user (Knock's signUserToken)."""
    now = int(time.time())
    grants = [SLACK_CHANNELS_READ, MS_TEAMS_CHANNELS_READ, CHANNEL_DATA_READ, CHANNEL_DATA_WRITE]
    claims = {
        "sub": USER,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "grants": {
            f"https://api.knock.app/v1/objects/$tenants/{TENANT}": {g: [{}] for g in grants}
        },
    }
    return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, RSAKey.import_key(signing_key_pem))


def _banner(public_url: str, keys: DemoKeys, urls: SimulatorUrls, directory: Path) -> str:
    rows = [
        ("environment", "demo"),
        ("public key", keys.public_key),
        ("secret key", keys.secret_key),
        ("user token", f"{keys.user_token}  ({USER}, 24 h)"),
        ("tenant object", f"$tenants/{TENANT}"),
        ("Slack channel id", keys.slack_channel_id),
        ("Teams channel id", keys.teams_channel_id),
        ("Slack simulator", urls.slack),
        (
            "Microsoft sim",
            f"{urls.consent} (consent, sign-in), {urls.microsoft_api} (Entra, Graph)",
        ),
        ("data", f"{directory} (SQLite, keys, the simulators' CA)"),
    ]
    table = "\n".join(f"  {name:<17} {value}" for name, value in rows)
    return (
        "provider-gateway demo: Slack and Microsoft are simulated; nothing leaves this machine.\n"
        f"\n  Open {public_url}/ and connect Slack or Microsoft Teams.\n\n{table}\n\n"
        "  Try, with the secret key (the provider calls once you have connected on the page):\n"
        + "".join(f"    {line}\n" for line in curl_lines(public_url, keys))
        + "\nThe data directory is deleted on exit. Press Ctrl+C to stop.\n"
    )


def curl_lines(public_url: str, keys: DemoKeys) -> list[str]:
    """Ready to paste: -g keeps curl from globbing the bracket keys the JS client sends, and
    the single quotes keep the shell off `$tenants`."""
    auth = f"-H 'Authorization: Bearer {keys.secret_key}'"
    slack = f"{public_url}/v1/providers/slack/{keys.slack_channel_id}"
    teams = f"{public_url}/v1/providers/ms-teams/{keys.teams_channel_id}"
    slack_tenant, teams_tenant = (
        f"{name}[object_id]={TENANT}&{name}[collection]=$tenants"
        for name in ("access_token_object", "ms_teams_tenant_object")
    )
    return [
        f"curl -g {auth} '{public_url}/v1/objects/$tenants/{TENANT}/channel_data/"
        f"{keys.slack_channel_id}'",
        f"curl -g {auth} '{slack}/auth_check?{slack_tenant}'",
        f"curl -g {auth} '{slack}/channels?{slack_tenant}&query_options[limit]=5'",
        f"curl -g {auth} '{teams}/auth_check?{teams_tenant}'",
        f"curl -g {auth} '{teams}/teams?{teams_tenant}'",
    ]
