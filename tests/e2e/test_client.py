"""@knocklabs/client (the published package) against the gateway, under node's test runner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import ClientSession
from knockapi import AsyncKnock, NotFoundError

from provider_gateway.models import Recipient
from tests.e2e.node import run_node
from tests.e2e.stack import (
    RECIPIENT,
    SLACK_PICK,
    SLACK_TEAM,
    TENANT,
    USER_ID,
    Stack,
    write_config,
)


async def _connect_tenant(stack: Stack) -> str:
    """Install Slack and Teams on the tenant as an operator may: sk_ key, channel data API."""
    world, token = stack.world, stack.slack.mint_token(SLACK_TEAM)
    stack.microsoft.consent(world.teams.client_id, stack.microsoft.consent_tenant)
    async with ClientSession(stack.gateway_url, headers=world.secret_headers()) as http:
        for channel_id, data in (
            (world.slack.id, {"token": {"access_token": token}, "connections": []}),
            (world.teams.id, {"ms_teams_tenant_id": stack.microsoft.consent_tenant}),
        ):
            response = await http.put(
                f"/v1/objects/$tenants/{TENANT}/channel_data/{channel_id}", json={"data": data}
            )
            assert response.status == 200, await response.text()
    return token


async def test_knock_client_calls_every_provider_and_channel_data_method(
    stack: Stack, tmp_path: Path
) -> None:
    slack_token = await _connect_tenant(stack)
    config = write_config(stack, tmp_path / "config.json")
    run = await run_node(
        ["--test", "--test-reporter=spec", "client.test.mjs"], env={"E2E_CONFIG": str(config)}
    )
    print(run.output)
    assert run.returncode == 0, run.output
    assert re.search(r"^\S+ fail 0$", run.output, re.MULTILINE), run.output
    assert not re.search(r"^\S+ pass 0$", run.output, re.MULTILINE), run.output

    # What the client's calls left in storage.
    world = stack.world
    assert "token" not in (await stack.stored(world.slack, stack.tenant) or {})
    assert "ms_teams_tenant_id" not in (await stack.stored(world.teams, stack.tenant) or {})
    assert [call.token for call in stack.slack.calls_to("auth.revoke")] == [slack_token]
    assert await stack.stored(world.slack, RECIPIENT) == {
        "connections": [{"channel_id": stack.slack_channel_id(name)} for name in SLACK_PICK]
    }
    assert await stack.stored(world.slack, Recipient.user(USER_ID)) == {
        "connections": [{"user_id": "U0E2EUSER"}]
    }

    # The Python SDK's users resource sees (and deletes) the user the JS client identified.
    async with AsyncKnock(
        api_key=world.secret_key, base_url=stack.gateway_url, max_retries=0
    ) as knock:
        user = await knock.users.get(USER_ID)
        assert (user.name, user.email) == ("Identified Inline", "alan@isla-nublar.test")
        assert [listed.id async for listed in knock.users.list()] == [USER_ID]
        await knock.users.delete(USER_ID)
        with pytest.raises(NotFoundError):
            await knock.users.get(USER_ID)
    assert await stack.stored(world.slack, Recipient.user(USER_ID)) is None
