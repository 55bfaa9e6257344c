"""Org-wide (Enterprise Grid) installs: stored as such, and channels listed per workspace."""

from __future__ import annotations

import json

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import FakeSlack
from tests.slack.test_oauth import slackkit_state
from tests.support import World

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


async def _channels(client: TestClient, world: World, **options: str) -> ClientResponse:
    params = {
        "access_token_object": TENANT,
        **{f"query_options[{k}]": v for k, v in options.items()},
    }
    return await client.get(
        f"/v1/providers/slack/{world.slack.id}/channels",
        params=params,
        headers=world.secret_headers(),
    )


async def test_org_install_and_per_workspace_listing(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.add_workspace("T0002", 5)
    code = fake_slack.issue_code("T0001", enterprise_id="E0GRID", org_install=True)
    page = await client.get(
        "/providers/slack/authenticate", params={"code": code, "state": slackkit_state(world)}
    )
    assert page.status == 200

    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    stored = await gateway.channel_data.get(
        environment.id, world.slack.id, Recipient.object("$tenants", "acme")
    )
    assert stored is not None
    token = stored["token"]
    assert token["is_enterprise_install"] is True
    assert token["enterprise_id"] == "E0GRID"
    assert "team_id" not in token

    missing = await _channels(client, world)
    assert missing.status == 422
    body = await missing.json()
    assert body["errors"][0]["field"] == "query_options.team_id"
    assert fake_slack.calls_to("conversations.list") == []

    listed = await _channels(client, world, team_id="T0002")
    channels = (await listed.json())["slack_channels"]
    assert len(channels) == 5
    assert {channel["context_team_id"] for channel in channels} == {"T0002"}
    assert fake_slack.calls_to("conversations.list")[0].params["team_id"] == "T0002"
