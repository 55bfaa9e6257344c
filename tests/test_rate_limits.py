"""Rate limits at their defaults serve the owner: secret keys unlimited, public keys limited
per environment and user on smooth GCRA budgets that replicas share through Redis.

Each test runs on SQLite with the in-process state and on PostgreSQL with Redis."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from provider_gateway.app import create_app
from provider_gateway.config import KNOCK_TIERS, ConfigError, Settings, load_settings
from provider_gateway.rate_limits import BURST_SECONDS
from provider_gateway.serving import startup_summary
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import ALLOWED_ORIGIN
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.support import World, seed_world, serve, tenant_uri

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})
GRANTS = {tenant_uri("acme"): {"slack/channels_read": [{}]}}
# Knock's tier 2: 5 requests/s, a budget of 10 s of them (rate_limits.BURST_SECONDS).
PROVIDERS_POLICY = '"tier-2";q=50;w=10'
BURST = 50
FLOOD = 80  # concurrent requests: more than a full budget
RATE_LIMIT = re.compile(r'^"tier-(\d)";r=(\d+);t=(\d+)$')


@pytest.fixture
async def shared(database_url: str) -> AsyncIterator[dict[str, str]]:
    """No Redis next to SQLite (the embedded default); Redis next to PostgreSQL."""
    if database_url.startswith("sqlite"):
        yield {}
        return
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield {"GATEWAY_REDIS_URL": REDIS_URL, "GATEWAY_REDIS_PREFIX": prefix}
    await drop_prefix(prefix)


@pytest.fixture
def settings_with(
    make_settings: Callable[..., Settings], shared: dict[str, str]
) -> Callable[..., Settings]:
    return lambda **overrides: make_settings(**shared, **overrides)


async def _client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await serve(aiohttp_client, create_app(settings))


def _auth_check(client: TestClient, world: World, headers: dict[str, str]) -> Any:
    # No token is stored, so an allowed request is a quick 403: nothing goes upstream.
    return client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=headers,
    )


def _browser(world: World, user: str = "user-1") -> dict[str, str]:
    return world.public_headers(world.user_token(sub=user, grants=GRANTS))


async def _burst(requests: list[Any]) -> tuple[list[ClientResponse], float]:
    """The responses of concurrent requests, and the seconds the whole burst took."""
    started = time.monotonic()
    responses = await asyncio.gather(*requests)
    return list(responses), time.monotonic() - started


def _within_one_budget(admitted: int, rate: int, seconds: float) -> bool:
    """A GCRA budget admits its burst (BURST_SECONDS of its rate) at once, then `rate` more
    per second; +1 for the request that straddles a refill. Two budgets, or fixed windows
    meeting at a boundary, admit about twice the burst at once."""
    return admitted <= rate * BURST_SECONDS + math.floor(seconds * rate) + 1


def _statuses(responses: list[ClientResponse]) -> list[int]:
    return [response.status for response in responses]


async def test_a_secret_key_burst_of_200_provider_requests_is_not_limited_by_default(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    settings = settings_with()
    assert settings.rate_limits == KNOCK_TIERS
    assert settings.secret_key_rate_limits == {}
    client = await _client(aiohttp_client, settings)
    world = await seed_world(client.app[GATEWAY])
    headers = world.secret_headers()
    responses, _ = await _burst([_auth_check(client, world, headers) for _ in range(200)])
    assert set(_statuses(responses)) == {403}
    # Not limited for this caller: no rate-limit headers either.
    assert not [r for r in responses if "RateLimit" in r.headers or "RateLimit-Policy" in r.headers]


async def test_a_public_key_burst_gets_429s_with_retry_after_and_both_headers(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with())
    world = await seed_world(client.app[GATEWAY])
    headers = _browser(world)
    responses, seconds = await _burst([_auth_check(client, world, headers) for _ in range(FLOOD)])
    statuses = _statuses(responses)
    assert set(statuses) == {403, 429}, statuses
    assert _within_one_budget(statuses.count(403), 5, seconds), (statuses, seconds)
    for response in responses:
        assert response.headers["RateLimit-Policy"] == PROVIDERS_POLICY
        match = RATE_LIMIT.match(response.headers["RateLimit"])
        assert match is not None, response.headers["RateLimit"]
        tier, remaining, reset = (int(value) for value in match.groups())
        assert tier == 2
        assert 0 <= remaining < BURST
        assert 1 <= reset <= BURST_SECONDS
    refused = [response for response in responses if response.status == 429]
    for response in refused:
        assert response.headers["RateLimit"].startswith('"tier-2";r=0;')
        assert response.headers["Retry-After"] == "1"  # a slot opens within 1/5 s, rounded up
    body = await refused[0].json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert set(body) == {"code", "message", "status", "type"}


async def test_successful_responses_of_limited_routes_carry_the_headers(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with())
    world = await seed_world(client.app[GATEWAY])
    headers = _browser(world, "user-7")
    path = f"/v1/users/user-7/channel_data/{world.slack.id}"
    data = {"data": {"connections": [{"channel_id": "C1"}]}}
    written = await client.put(path, json=data, headers=headers)
    read = await client.get(path, headers=headers)
    assert (written.status, read.status) == (200, 200)
    # Channel data writes are tier 3 (60/s), reads tier 4 (200/s).
    assert written.headers["RateLimit-Policy"] == '"tier-3";q=600;w=10'
    assert written.headers["RateLimit"] == '"tier-3";r=599;t=1'
    assert read.headers["RateLimit-Policy"] == '"tier-4";q=2000;w=10'
    assert read.headers["RateLimit"] == '"tier-4";r=1999;t=1'


async def test_two_users_and_two_environments_have_separate_budgets(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with())
    world = await seed_world(client.app[GATEWAY])
    other_environment = await seed_world(client.app[GATEWAY])
    first = _browser(world, "user-1")
    responses, _ = await _burst([_auth_check(client, world, first) for _ in range(FLOOD)])
    assert 429 in _statuses(responses)
    # Right after: another user, and the same user id in another environment, start full.
    for environment, headers in (
        (world, _browser(world, "user-2")),
        (other_environment, _browser(other_environment, "user-1")),
    ):
        responses, _ = await _burst([_auth_check(client, environment, headers) for _ in range(3)])
        assert _statuses(responses) == [403, 403, 403]
        # A full budget answers r=49 to the first of them.
        assert '"tier-2";r=49;t=1' in [response.headers["RateLimit"] for response in responses]


async def test_other_tiers_are_not_spent_by_provider_calls(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with())
    world = await seed_world(client.app[GATEWAY])
    headers = _browser(world, "user-3")
    responses, _ = await _burst([_auth_check(client, world, headers) for _ in range(FLOOD)])
    assert 429 in _statuses(responses)
    path = f"/v1/users/user-3/channel_data/{world.slack.id}"
    reads, _ = await _burst([client.get(path, headers=headers) for _ in range(20)])
    assert 429 not in _statuses(reads)  # channel data reads are tier 4 (200/s)


async def test_secret_keys_are_limited_per_environment_when_configured(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    settings = settings_with(GATEWAY_SECRET_KEY_RATE_LIMITS="2=5")
    client = await _client(aiohttp_client, settings)
    world = await seed_world(client.app[GATEWAY])
    other_environment = await seed_world(client.app[GATEWAY])
    headers = world.secret_headers()
    responses, seconds = await _burst([_auth_check(client, world, headers) for _ in range(FLOOD)])
    statuses = _statuses(responses)
    assert 429 in statuses
    assert _within_one_budget(statuses.count(403), 5, seconds)
    refused = next(response for response in responses if response.status == 429)
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Policy"] == PROVIDERS_POLICY
    other = await _auth_check(client, other_environment, other_environment.secret_headers())
    assert other.status == 403
    assert other.headers["RateLimit"] == '"tier-2";r=49;t=1'


async def test_two_replicas_share_one_budget(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        GATEWAY_RATE_LIMITS="2=1", GATEWAY_REDIS_URL=REDIS_URL, GATEWAY_REDIS_PREFIX=prefix
    )
    try:
        replicas = [await _client(aiohttp_client, settings) for _ in range(2)]
        world = await seed_world(replicas[0].app[GATEWAY])
        headers = _browser(world)
        requests = [_auth_check(replicas[i % 2], world, headers) for i in range(40)]
        responses, seconds = await _burst(requests)
    finally:
        await drop_prefix(prefix)
    admitted = _statuses(responses).count(403)
    # Two budgets would admit 20 at once; one shared budget admits 10 and its refill.
    assert admitted >= 10
    assert _within_one_budget(admitted, 1, seconds), (admitted, seconds)
    assert {r.status for r in responses[0::2]} | {r.status for r in responses[1::2]} == {403, 429}


async def test_no_more_than_one_burst_is_admitted_across_a_second_boundary(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    """Fixed one-second windows admit a window's worth on each side of the boundary."""
    client = await _client(aiohttp_client, settings_with(GATEWAY_RATE_LIMITS="2=1"))
    world = await seed_world(client.app[GATEWAY])
    headers = _browser(world)
    await asyncio.sleep(1.85 - time.time() % 1)  # 0.15 s before the next second but one
    boundary = math.ceil(time.time())
    started, admitted = time.monotonic(), 0
    while time.time() < boundary + 0.15:
        response = await _auth_check(client, world, headers)
        admitted += response.status == 403
    seconds = time.monotonic() - started
    assert admitted >= BURST_SECONDS
    assert _within_one_budget(admitted, 1, seconds), (admitted, seconds)


async def test_refusals_are_counted_in_metrics(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with())
    world = await seed_world(client.app[GATEWAY])
    headers = _browser(world)
    responses, _ = await _burst([_auth_check(client, world, headers) for _ in range(FLOOD)])
    text = await (await client.get("/metrics")).text()
    counted = next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_rate_limited_total"
    )
    assert counted == _statuses(responses).count(429) > 0


async def test_browsers_may_read_the_rate_limit_headers(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with())
    world = await seed_world(client.app[GATEWAY])
    response = await _auth_check(client, world, {**_browser(world), "Origin": ALLOWED_ORIGIN})
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"RateLimit", "RateLimit-Policy", "Retry-After"} <= exposed


async def test_the_start_up_summary_names_both_limits(
    aiohttp_client: Any, settings_with: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, settings_with(GATEWAY_SECRET_KEY_RATE_LIMITS="2=50"))
    summary = await startup_summary(client.app)
    assert summary["rate_limits"] == "knock (1=1/s 2=5/s 3=60/s 4=200/s 5=1000/s)"
    assert summary["secret_key_rate_limits"] == "custom (1=1/s 2=50/s 3=60/s 4=200/s 5=1000/s)"


@pytest.mark.parametrize("name", ["GATEWAY_RATE_LIMITS", "GATEWAY_SECRET_KEY_RATE_LIMITS"])
def test_both_settings_share_one_syntax(name: str) -> None:
    assert getattr(load_settings({name: "knock"}), _field(name)) == KNOCK_TIERS
    assert getattr(load_settings({name: "off"}), _field(name)) == {}
    assert getattr(load_settings({name: " 2 = 20 ,3=100"}), _field(name)) == {
        **KNOCK_TIERS,
        2: 20,
        3: 100,
    }


@pytest.mark.parametrize("name", ["GATEWAY_RATE_LIMITS", "GATEWAY_SECRET_KEY_RATE_LIMITS"])
@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("2=0", "1 to 1000000 requests per second"),
        ("9=5", "tiers are 1 to 5"),
        ("fast", "is not tier=rate"),
        ("2=", "is not tier=rate"),
        ("2=1.5", "is not tier=rate"),
        ("2=20,", "is not tier=rate"),
        ("2=5\n3=5", "is not tier=rate"),
        ("2=9999999", "1 to 1000000"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(name: str, bad: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({name: bad})
    message = str(raised.value)
    assert message.startswith(f"{name}: ")
    assert says in message
    assert "\n" not in message


def _field(name: str) -> str:
    return name.removeprefix("GATEWAY_").lower()
