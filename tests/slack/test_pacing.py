"""Upstream pacing for Slack: calls for one workspace keep within Slack's per-method tiers on
every replica, Slack's own 429s hold the workspace's budget, cached answers spend nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from provider_gateway.app import create_app
from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import Failure, FakeSlack
from tests.shared.conftest import REDIS_URL, drop_prefix
from tests.slack.conftest import TEAM
from tests.slack.support import TENANT, install_token, list_channels
from tests.support import World, seed_world, serve


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fake_slack: FakeSlack) -> Settings:
    """The defaults: pacing on, waits up to 5 s (the upstream timeout being 10 s)."""
    return make_settings(SLACK_API_URL=fake_slack.api_url)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pgw-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    await drop_prefix(prefix)


async def _assert_paced_refusal(response: ClientResponse) -> int:
    """A 429 in Knock's body with a whole-second Retry-After; returns the seconds."""
    assert response.status == 429
    body = await response.json()
    assert set(body) == {"code", "message", "status", "type"}
    assert body["code"] == "rate_limited"
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    return seconds


async def test_concurrent_uncached_listings_keep_within_slacks_tier_2_rule(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.tier2_per_minute = 20
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    # Thirty different pages at once: none is cached, each needs its own conversations.list.
    responses = await asyncio.gather(
        *(list_channels(client, world, limit=str(n)) for n in range(1, 31))
    )
    statuses = [response.status for response in responses]
    assert set(statuses) <= {200, 429}, statuses
    for response in responses:
        if response.status == 429:
            await _assert_paced_refusal(response)
    assert fake_slack.throttled == []  # Slack never had to say no
    calls = fake_slack.calls_to("conversations.list")
    assert len(calls) == statuses.count(200)
    # The burst went at once, and at least one request waited for the next slot (4 s on).
    assert statuses.count(200) >= 5
    sent = sorted(call.at for call in calls)
    assert sent[4] - sent[0] >= 3.0


async def test_without_pacing_the_same_burst_breaks_slacks_rule(
    aiohttp_client: Any, make_settings: Callable[..., Settings], fake_slack: FakeSlack
) -> None:
    """The control for the test above: the fake's rule does bite when nothing paces."""
    settings = make_settings(SLACK_API_URL=fake_slack.api_url, GATEWAY_UPSTREAM_PACING="off")
    client = await serve(aiohttp_client, create_app(settings))
    world = await seed_world(client.app[GATEWAY])
    fake_slack.tier2_per_minute = 20
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    responses = await asyncio.gather(
        *(list_channels(client, world, limit=str(n)) for n in range(1, 31))
    )
    assert fake_slack.throttled
    assert {response.status for response in responses} <= {200, 429}


async def test_two_replicas_share_one_workspace_budget(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        SLACK_API_URL=fake_slack.api_url,
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=redis_prefix,
        GATEWAY_UPSTREAM_MAX_WAIT_SECONDS="0",  # only what the budget allows at once
    )
    replicas = [await serve(aiohttp_client, create_app(settings)) for _ in range(2)]
    world = await seed_world(replicas[0].app[GATEWAY])
    await install_token(replicas[0], world, fake_slack.mint_token(TEAM), team_id=TEAM)
    responses = await asyncio.gather(
        *(list_channels(replicas[n % 2], world, limit=str(n)) for n in range(1, 21))
    )
    assert sorted({response.status for response in responses}) == [200, 429]
    # Tier 2's burst is 4 calls per workspace, for both replicas together (alone, each would
    # have sent 4).
    assert len(fake_slack.calls_to("conversations.list")) == 4


async def test_slacks_429_holds_the_workspace_for_its_retry_after(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    fake_slack.fail_next("conversations.list", Failure(status=429, retry_after=30))
    assert await _assert_paced_refusal(await list_channels(client, world, limit="10")) == 30
    # Another page during the Retry-After: answered at once, and Slack is not called again.
    held = await _assert_paced_refusal(await list_channels(client, world, limit="20"))
    assert 28 <= held <= 30
    assert len(fake_slack.calls_to("conversations.list")) == 1


async def test_a_short_retry_after_is_waited_out_once_within_the_deadline(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    fake_slack.fail_next(
        "conversations.list", Failure(status=429, retry_after=1), Failure(status=429, retry_after=1)
    )
    response = await list_channels(client, world)
    # One retry, never a storm: the second 429 goes to the caller.
    await _assert_paced_refusal(response)
    assert len(fake_slack.calls_to("conversations.list")) == 2


async def test_cached_answers_spend_no_budget_and_wait_for_nothing(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    assert (await list_channels(client, world, limit="10")).status == 200
    fake_slack.fail_next("conversations.list", Failure(status=429, retry_after=30))
    await _assert_paced_refusal(await list_channels(client, world, limit="20"))
    # The workspace's budget is held for 30 s, yet the cached page is served as before.
    for _ in range(5):
        assert (await list_channels(client, world, limit="10")).status == 200
    assert len(fake_slack.calls_to("conversations.list")) == 2


async def test_other_workspaces_are_not_slowed(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.add_workspace("T0002", 5)
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    await install_token(
        client, world, fake_slack.mint_token("T0002"), tenant="globex", team_id="T0002"
    )
    fake_slack.fail_next("conversations.list", Failure(status=429, retry_after=30))
    await _assert_paced_refusal(await list_channels(client, world))
    globex = json.dumps({"collection": "$tenants", "object_id": "globex"})
    response = await list_channels(client, world, tenant=globex)
    assert response.status == 200
    assert len((await response.json())["slack_channels"]) == 5


async def test_auth_check_is_paced_per_method(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    """Slack counts each method apart: a held conversations.list leaves auth.test alone."""
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    fake_slack.fail_next("conversations.list", Failure(status=429, retry_after=30))
    await _assert_paced_refusal(await list_channels(client, world))
    response = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": TENANT},
        headers=world.secret_headers(),
    )
    assert response.status == 200
    assert (await response.json())["connection"]["ok"] is True
    fake_slack.fail_next("auth.test", Failure(status=429, retry_after=30))
    for _ in range(2):
        response = await client.get(
            f"/v1/providers/slack/{world.slack.id}/auth_check",
            params={"access_token_object": TENANT},
            headers=world.secret_headers(),
        )
        await _assert_paced_refusal(response)
    assert len(fake_slack.calls_to("auth.test")) == 2  # the second check never reached Slack
