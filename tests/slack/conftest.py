"""Slack tests run the gateway against the fake Slack Web API on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.config import Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import FakeSlack
from tests.support import World, seed_world

TEAM = "T0001"


@pytest.fixture
async def fake_slack(aiohttp_server: Callable[..., Any]) -> FakeSlack:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app)
    fake.api_url = str(server.make_url("/api/"))
    fake.add_workspace(TEAM, 30)
    return fake


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fake_slack: FakeSlack) -> Settings:
    return make_settings(SLACK_API_URL=fake_slack.api_url, GATEWAY_UPSTREAM_TIMEOUT_SECONDS="2")


@pytest.fixture
async def world(client: TestClient, fake_slack: FakeSlack) -> World:
    seeded = await seed_world(client.app[GATEWAY])
    fake_slack.register_app(
        seeded.slack.client_id, seeded.slack.client_secret.reveal(), seeded.slack.app_id or "A0TEST"
    )
    return seeded
