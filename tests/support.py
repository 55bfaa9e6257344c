"""Test helpers: a seeded environment with keys and channels, and Knock-style user tokens."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import RSAKey

from provider_gateway.app import RUNNER_OPTIONS
from provider_gateway.config import Secret
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel

KNOCK_API = "https://api.knock.app"


async def serve(aiohttp_client: Any, app: web.Application) -> TestClient:
    """Serve `app` exactly as `provider-gateway serve` does (our access logger included).

    aiohttp's TestServer ignores runner options given to its constructor; they must go to
    start_server().
    """
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await aiohttp_client(server)
    assert isinstance(client, TestClient)
    return client


def tenant_uri(tenant: str) -> str:
    return f"{KNOCK_API}/v1/objects/$tenants/{tenant}"


def object_uri(collection: str, object_id: str) -> str:
    return f"{KNOCK_API}/v1/objects/{collection}/{object_id}"


@dataclass
class World:
    """One environment with its keys, a Slack channel and a Teams channel."""

    gateway: Gateway
    environment_name: str
    public_key: str
    secret_key: str
    signing_key_pem: str
    slack: Channel
    teams: Channel

    def user_token(
        self,
        sub: str = "user-1",
        grants: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
        *,
        expires_in: int = 3600,
        signing_key_pem: str | None = None,
        omit: tuple[str, ...] = (),
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + expires_in}
        if grants is not None:
            claims["grants"] = grants
        for claim in omit:
            claims.pop(claim, None)
        key = RSAKey.import_key(signing_key_pem or self.signing_key_pem)
        return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, key)

    def secret_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    def public_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.public_key}", "X-Knock-User-Token": token}


async def seed_world(gateway: Gateway, name: str | None = None) -> World:
    name = name or f"env-{uuid.uuid4().hex[:10]}"
    environment = await gateway.environments.create(name, actor="test")
    issued = await gateway.credentials.issue(environment, actor="test")
    slack = await gateway.channels.add(
        provider="slack",
        client_id="1111.2222",
        client_secret=Secret("slack-client-secret-" + uuid.uuid4().hex),
        app_id="A0TEST",
        environment_id=environment.id,
        actor="test",
    )
    teams = await gateway.channels.add(
        provider="ms-teams",
        client_id=str(uuid.uuid4()),
        client_secret=Secret("graph-client-secret-" + uuid.uuid4().hex),
        environment_id=environment.id,
        actor="test",
    )
    return World(
        gateway=gateway,
        environment_name=name,
        public_key=issued.public_key,
        secret_key=issued.secret_key,
        signing_key_pem=issued.signing_key_pem,
        slack=slack,
        teams=teams,
    )


async def drop_redis_prefix(redis_url: str, prefix: str) -> None:
    """Remove every key a test (or benchmark) wrote under its own prefix."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def posted_message(page: str) -> dict[str, Any]:
    """The message an OAuth callback page posts to its opener."""
    match = re.search(r"var message = (.*);", page)
    assert match, page
    message: dict[str, Any] = json.loads(match.group(1))
    return message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_json(result: subprocess.CompletedProcess[str]) -> Any:
    """A CLI command's JSON output, after checking it succeeded."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str], contains: str) -> None:
    """A CLI failure as operators should see it: non-zero, one line on stderr, no traceback."""
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert contains in lines[0], lines[0]
