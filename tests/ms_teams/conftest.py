"""Teams tests run the gateway against fake Entra and Graph served over TLS (trustme CA)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestClient

from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.support import Popup
from tests.support import World, seed_world

TENANT_ID = "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d"


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(certificate_authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def fake_microsoft(
    aiohttp_server: Callable[..., Any], certificate_authority: trustme.CA
) -> FakeMicrosoft:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    fake = FakeMicrosoft()
    login = await aiohttp_server(fake.login_app, ssl=server_context)
    graph = await aiohttp_server(fake.graph_app, ssl=server_context)
    fake.login_url = str(login.make_url("")).rstrip("/")
    fake.graph_url = str(graph.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], fake_microsoft: FakeMicrosoft, ca_bundle: Path
) -> Settings:
    return make_settings(
        MS_LOGIN_URL=fake_microsoft.login_url,
        MS_GRAPH_URL=fake_microsoft.graph_url,
        GATEWAY_CA_BUNDLE=str(ca_bundle),
        GATEWAY_UPSTREAM_TIMEOUT_SECONDS="3",
    )


@pytest.fixture
def popup(
    client: TestClient, fake_microsoft: FakeMicrosoft, certificate_authority: trustme.CA
) -> Popup:
    """A browser that trusts the fake's CA (a real one trusts Entra's)."""
    tls = ssl.create_default_context()
    certificate_authority.configure_trust(tls)
    return Popup(client, fake_microsoft, tls)


@pytest.fixture
async def world(client: TestClient, fake_microsoft: FakeMicrosoft) -> World:
    seeded = await seed_world(client.app[GATEWAY])
    fake_microsoft.register_app(seeded.teams.client_id, seeded.teams.client_secret.reveal())
    return seeded
