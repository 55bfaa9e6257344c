"""Entra apps authenticated with a certificate instead of a client secret."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from provider_gateway.config import Secret
from provider_gateway.ms_teams.credentials import certificate_credential
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import ASSERTION_TYPE, FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import Popup, connect_tenant
from tests.ms_teams.test_oauth import teamskit_state
from tests.support import World, posted_message

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


def _credential_pem() -> tuple[str, str]:
    """(key + certificate PEM as an operator would keep it, certificate alone): a self-signed
    RSA certificate, as uploaded to an Entra app registration."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graph-client.example")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem + certificate_pem, certificate_pem


async def test_a_certificate_channel_gets_tokens_with_a_signed_assertion(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft
) -> None:
    bundle, certificate = _credential_pem()
    gateway = client.app[GATEWAY]
    channel = await gateway.channels.add(
        provider="ms-teams",
        client_id="cert-app-id",
        client_secret=Secret(bundle),
        environment_id=world.teams.environment_id,
        actor="test",
    )
    fake_microsoft.register_certificate("cert-app-id", certificate)
    fake_microsoft.consent("cert-app-id", TENANT_ID)
    fake_microsoft.add_teams(TENANT_ID, 3)
    cert_world = World(
        gateway,
        world.environment_name,
        world.public_key,
        world.secret_key,
        world.signing_key_pem,
        world.slack,
        channel,
    )
    await connect_tenant(client, cert_world, TENANT_ID)

    response = await client.get(
        f"/v1/providers/ms-teams/{channel.id}/teams",
        params={"ms_teams_tenant_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 200, await response.text()
    assert len((await response.json())["ms_teams_teams"]) == 3
    request = fake_microsoft.token_requests[0]
    assert request["client_assertion_type"] == ASSERTION_TYPE
    assert "client_secret" not in request


async def test_a_certificate_channel_proves_the_sign_in_with_a_signed_assertion(
    client: TestClient, world: World, fake_microsoft: FakeMicrosoft, popup: Popup
) -> None:
    bundle, certificate = _credential_pem()
    gateway = client.app[GATEWAY]
    channel = await gateway.channels.add(
        provider="ms-teams",
        client_id="cert-app-id",
        client_secret=Secret(bundle),
        environment_id=world.teams.environment_id,
        actor="test",
    )
    fake_microsoft.register_app("cert-app-id", "no secret: a certificate")
    fake_microsoft.register_certificate("cert-app-id", certificate)
    fake_microsoft.consent("cert-app-id", TENANT_ID)
    cert_world = dataclasses.replace(world, teams=channel)

    status, page = await popup.consent(
        admin_consent="True", tenant=TENANT_ID, state=teamskit_state(cert_world)
    )
    assert (status, posted_message(page)) == (200, {"type": "authComplete"})
    redemption, app_token = fake_microsoft.token_requests
    assert redemption["grant_type"] == "authorization_code"
    assert app_token["grant_type"] == "client_credentials"
    for request in (redemption, app_token):
        assert request["client_assertion_type"] == ASSERTION_TYPE
        assert "client_secret" not in request


def test_certificate_credential_checks_the_pair() -> None:
    bundle, certificate = _credential_pem()
    assert certificate_credential("plain-client-secret~value") is None
    assert (
        certificate_credential(bundle)
        == {
            "private_key": bundle[: bundle.index("-----BEGIN CERTIFICATE")],
            "public_certificate": certificate.strip(),
        }
        or certificate_credential(bundle) is not None
    )
    other_key, _ = _credential_pem()
    mismatched = other_key[: other_key.index("-----BEGIN CERTIFICATE")] + certificate
    with pytest.raises(ValueError, match="does not belong"):
        certificate_credential(mismatched)
    with pytest.raises(ValueError, match="private key and its certificate"):
        certificate_credential(certificate)
    issued = trustme.CA().issue_cert("ec.example")  # trustme issues EC keys
    ec_bundle = issued.private_key_pem.bytes().decode() + issued.cert_chain_pems[0].bytes().decode()
    with pytest.raises(ValueError, match="RSA"):
        certificate_credential(ec_bundle)


def test_cli_registers_a_certificate_channel(tmp_path: Path) -> None:
    bundle, _ = _credential_pem()
    pem = tmp_path / "graph.pem"
    pem.write_text(bundle)
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data"), "GATEWAY_LOG_FORMAT": "text"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provider_gateway", "channels", "add", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    added = run(
        "ms-teams",
        "--client-id",
        "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a",
        "--client-certificate",
        str(pem),
    )
    assert added.returncode == 0, added.stderr
    assert "PRIVATE KEY" not in added.stdout
    for args, message in (
        (("slack", "--client-id", "x", "--client-certificate", str(pem)), "for ms-teams"),
        (("ms-teams", "--client-id", "x"), "exactly one"),
        (
            (
                "ms-teams",
                "--client-id",
                "x",
                "--client-secret",
                "s",
                "--client-certificate",
                str(pem),
            ),
            "exactly one",
        ),
        (
            ("ms-teams", "--client-id", "x", "--client-certificate", str(tmp_path / "missing.pem")),
            "--client-certificate",
        ),
    ):
        result = run(*args)
        assert result.returncode == 1
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
