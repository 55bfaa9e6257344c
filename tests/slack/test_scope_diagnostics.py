"""A Slack install without the scopes the combobox needs: auth_check says which, channels
answers a 4xx naming it instead of a generic upstream error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from knockapi import AsyncKnock, PermissionDeniedError

from tests.fakes.slack import SLACKKIT_SCOPES, FakeSlack
from tests.slack.conftest import TEAM
from tests.slack.support import install_token
from tests.support import World

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})
WITHOUT_GROUPS_READ = ("chat:write", "chat:write.public", "channels:read")
MISSING_GROUPS_READ = {
    "code": "missing_scope",
    "message": "The Slack app's token lacks the groups:read scope needed to list "
    "private_channel conversations. Add it to the Slack app's bot token scopes and "
    "reinstall the app in this workspace.",
    "status": 403,
    "type": "invalid_request_error",
    "missing_scopes": ["groups:read"],
}


@pytest.fixture
async def knock(client: TestClient, world: World) -> AsyncIterator[AsyncKnock]:
    async with AsyncKnock(
        api_key=world.secret_key, base_url=str(client.make_url("")), max_retries=0
    ) as sdk:
        yield sdk


async def _get(client: TestClient, world: World, what: str, **options: str) -> Any:
    params = {
        "access_token_object": TENANT,
        **{f"query_options[{k}]": v for k, v in options.items()},
    }
    return await client.get(
        f"/v1/providers/slack/{world.slack.id}/{what}",
        params=params,
        headers=world.secret_headers(),
    )


async def test_a_fully_scoped_token_checks_ok_and_nothing_more(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=SLACKKIT_SCOPES))
    response = await _get(client, world, "auth_check")
    assert await response.json() == {"connection": {"ok": True}}


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        (WITHOUT_GROUPS_READ, ["groups:read"]),
        (("chat:write",), ["channels:read", "groups:read"]),
    ],
)
async def test_auth_check_names_the_scopes_the_listing_lacks(
    client: TestClient,
    world: World,
    fake_slack: FakeSlack,
    granted: tuple[str, ...],
    missing: list[str],
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=granted))
    response = await _get(client, world, "auth_check")
    assert response.status == 200
    assert await response.json() == {"connection": {"ok": True, "missing_scopes": missing}}


async def test_without_slacks_scopes_header_nothing_is_guessed(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.scopes_header = False
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=("chat:write",)))
    response = await _get(client, world, "auth_check")
    assert await response.json() == {"connection": {"ok": True}}


async def test_the_sdk_sees_missing_scopes_on_a_connected_check(
    client: TestClient, world: World, fake_slack: FakeSlack, knock: AsyncKnock
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=WITHOUT_GROUPS_READ))
    checked = await knock.providers.slack.check_auth(world.slack.id, access_token_object=TENANT)
    assert checked.connection.ok is True
    assert checked.connection.to_dict()["missing_scopes"] == ["groups:read"]


async def test_channels_without_groups_read_is_403_missing_scope(
    client: TestClient, world: World, fake_slack: FakeSlack, knock: AsyncKnock
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=WITHOUT_GROUPS_READ))
    response = await _get(client, world, "channels")
    assert response.status == 403
    assert await response.json() == MISSING_GROUPS_READ
    refusal = fake_slack.calls_to("conversations.list")[-1]
    assert refusal.params["types"] == "public_channel,private_channel"  # SlackKit's default
    with pytest.raises(PermissionDeniedError) as raised:
        await knock.providers.slack.list_channels(world.slack.id, access_token_object=TENANT)
    assert raised.value.body == MISSING_GROUPS_READ


async def test_channels_name_every_missing_scope_of_the_types_asked(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=("chat:write",)))
    response = await _get(client, world, "channels", types="public_channel,private_channel,im")
    body = await response.json()
    assert response.status == 403
    assert body["missing_scopes"] == ["channels:read", "groups:read", "im:read"]
    assert body["message"].startswith(
        "The Slack app's token lacks the channels:read, groups:read and im:read scopes "
        "needed to list public_channel, private_channel and im conversations. Add them "
    )


async def test_types_the_token_covers_still_list(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM, scopes=WITHOUT_GROUPS_READ))
    response = await _get(client, world, "channels", types="public_channel")
    assert response.status == 200
    assert (await response.json())["slack_channels"]


async def test_once_the_scope_is_granted_both_answers_recover(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    token = fake_slack.mint_token(TEAM, scopes=WITHOUT_GROUPS_READ)
    await install_token(client, world, token)
    assert (await _get(client, world, "channels")).status == 403
    fake_slack.set_scopes(token, *SLACKKIT_SCOPES)
    assert await (await _get(client, world, "auth_check")).json() == {"connection": {"ok": True}}
    assert (await _get(client, world, "channels")).status == 200  # the refusal was not cached
