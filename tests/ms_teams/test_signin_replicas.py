"""The sign-in's two hops on two replicas sharing Redis; what Redis holds afterwards."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis
import trustme
from yarl import URL

from provider_gateway.app import create_app
from provider_gateway.config import Secret, Settings
from provider_gateway.crypto import KeyRing
from provider_gateway.models import Recipient
from provider_gateway.ms_teams.signin import PendingSignin, PendingSignins
from provider_gateway.shared.backends import RedisBackend
from provider_gateway.shared.state import SharedState
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import KEY_A
from tests.fakes.microsoft import FakeMicrosoft
from tests.ms_teams.conftest import TENANT_ID
from tests.ms_teams.support import CALLBACK, Popup
from tests.ms_teams.test_oauth import teamskit_state
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.support import World, posted_message, seed_world, serve


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


async def _redis_contents(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = [key async for key in client.scan_iter(f"{prefix}:*")]
        return names + [value or b"" for value in [await client.get(name) for name in names]]
    finally:
        await client.aclose()


async def test_the_sign_in_finishes_on_another_replica_and_redis_keeps_no_ids(
    aiohttp_client: Any,
    settings: Settings,
    fake_microsoft: FakeMicrosoft,
    redis_prefix: str,
    make_settings: Callable[..., Settings],
    certificate_authority: trustme.CA,
) -> None:
    shared = make_settings(
        MS_LOGIN_URL=settings.ms_login_url,
        MS_GRAPH_URL=settings.ms_graph_url,
        GATEWAY_CA_BUNDLE=str(settings.ca_bundle),
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=redis_prefix,
    )
    first, second = [await serve(aiohttp_client, create_app(shared)) for _ in range(2)]
    world = await seed_world(first.app[GATEWAY])
    fake_microsoft.register_app(world.teams.client_id, world.teams.client_secret.reveal())
    fake_microsoft.consent(world.teams.client_id, TENANT_ID)
    tls = ssl.create_default_context()
    certificate_authority.configure_trust(tls)
    state = teamskit_state(world)

    consent = await first.get(
        CALLBACK,
        params={"admin_consent": "True", "tenant": TENANT_ID, "state": state},
        allow_redirects=False,
    )
    assert consent.status == 302
    location = URL(consent.headers["Location"])
    # Between the hops: the pending sign-in and the claimed state, sealed or digested.
    user_token = json.loads(state)["user_token"]
    await _assert_holds_none(
        redis_prefix, world, state, user_token, location.query["state"], location.query["nonce"]
    )
    _, back = await Popup(first, fake_microsoft, tls).sign_in(str(location))
    returned = URL(back)
    on_second = second.make_url(returned.path).with_query(returned.query)
    async with second.session.get(on_second) as page:
        assert (page.status, posted_message(await page.text())) == (200, {"type": "authComplete"})
    async with first.session.get(back) as replay:  # the same return, on the first replica
        assert posted_message(await replay.text())["reason"] == "invalid_state"

    assert await _stored_tenant_id(second, world) == TENANT_ID
    await _assert_holds_none(
        redis_prefix,
        world,
        state,
        user_token,
        location.query["state"],
        location.query["nonce"],
        returned.query["code"],
    )


async def _assert_holds_none(prefix: str, world: World, *others: str) -> None:
    """Neither key names nor values in Redis hold a tenant id, an object id or a secret."""
    contents = await _redis_contents(prefix)
    assert contents
    forbidden = [
        TENANT_ID,
        TENANT_ID.replace("-", ""),
        "acme",
        world.teams.id,
        world.teams.client_secret.reveal(),
        *others,
    ]
    for secret in forbidden:
        for item in contents:
            assert secret.encode() not in item, (secret, item)


async def _stored_tenant_id(client: Any, world: World) -> Any:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    data = await gateway.channel_data.get(
        environment.id, world.teams.id, Recipient.object("$tenants", "acme")
    )
    return (data or {}).get("ms_teams_tenant_id")


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_pending_sign_in_is_taken_once_and_expires(backend: str, redis_prefix: str) -> None:
    state = SharedState(RedisBackend(REDIS_URL, redis_prefix) if backend == "redis" else None)
    signins = PendingSignins(state, KeyRing((Secret(KEY_A),)), ttl_seconds=0.3)
    pending = PendingSignin("{}", TENANT_ID, "nonce", "verifier", "https://gw.example/cb")
    try:
        taken = await signins.start(pending)
        assert await asyncio.gather(signins.take(taken), signins.take(taken)) in (
            [pending, None],
            [None, pending],
        )
        expiring = await signins.start(pending)
        await asyncio.sleep(0.5)
        assert await signins.take(expiring) is None
        assert await signins.take("B" * 43) is None
    finally:
        await state.close()
