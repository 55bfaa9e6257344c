"""An install's token is never dropped while live upstream: a browser's DELETE keeps it, and a
reinstall onto another workspace revokes the token it replaced (unless another tenant holds it)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import TEAM
from tests.slack.support import install_token
from tests.slack.test_oauth import _callback, _tenant_data, slackkit_state
from tests.support import World, object_uri, posted_message, tenant_uri

OTHER_TEAM = "T0002"


def _browser(world: World, tenant: str = "acme") -> dict[str, str]:
    grants = {
        tenant_uri(tenant): {"channel_data/read": [{}], "channel_data/write": [{}]},
        object_uri("projects", "p1"): {"channel_data/write": [{}]},
    }
    return world.public_headers(world.user_token(grants=grants))


async def _audit(client: TestClient, action: str) -> list[dict[str, Any]]:
    events = await client.app[GATEWAY].audit.recent()
    return [dict(event.entry.details) for event in events if event.entry.action == action]


async def test_a_browser_delete_keeps_the_token(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    token = fake_slack.mint_token(TEAM)
    await install_token(client, world, token)
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    deleted = await client.delete(path, headers=_browser(world))
    assert deleted.status == 204

    assert await _tenant_data(client, world) == {
        "token": {"access_token": token},
        "connections": [],
    }
    seen = await client.get(path, headers=_browser(world))
    assert await seen.json() == {
        "__typename": "ChannelData",
        "channel_id": world.slack.id,
        "data": {"connections": []},
    }
    assert fake_slack.calls_to("auth.revoke") == []
    checked = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": '{"collection": "$tenants", "object_id": "acme"}'},
        headers=world.secret_headers(),
    )
    assert (await checked.json())["connection"]["ok"] is True
    assert (await _audit(client, "channel_data.unset"))[0] == {"kept": ["token"]}


async def test_a_browser_delete_without_a_credential_removes_everything(
    client: TestClient, world: World
) -> None:
    path = f"/v1/objects/projects/p1/channel_data/{world.slack.id}"
    put = await client.put(
        path, json={"data": {"connections": [{"channel_id": "C1"}]}}, headers=_browser(world)
    )
    assert put.status == 200
    assert (await client.delete(path, headers=_browser(world))).status == 204
    assert (await client.get(path, headers=world.secret_headers())).status == 404


async def test_a_secret_key_delete_removes_the_token(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    path = f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}"
    assert (await client.delete(path, headers=world.secret_headers())).status == 204
    assert await _tenant_data(client, world) is None


async def test_reinstalling_onto_another_workspace_revokes_the_replaced_token(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.add_workspace(OTHER_TEAM, 3)
    old = fake_slack.mint_token(TEAM)
    await install_token(client, world, old, team_id=TEAM)
    status, page, _ = await _callback(
        client, code=fake_slack.issue_code(OTHER_TEAM), state=slackkit_state(world)
    )
    assert (status, posted_message(page)["type"]) == (200, "authComplete")

    assert [call.token for call in fake_slack.calls_to("auth.revoke")] == [old]
    new = (await _tenant_data(client, world) or {})["token"]
    assert new["team_id"] == OTHER_TEAM
    assert new["access_token"] != old
    [event] = await _audit(client, "token.revoked")
    assert event == {
        "provider": "slack",
        "reason": "replaced_by_reinstall",
        "team_id": TEAM,
        "outcome": "revoked",
    }


async def test_reinstalling_into_the_same_workspace_revokes_nothing(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    """Slack deactivates a revoked token's bot user: the new install would die with it."""
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    status, _, _ = await _callback(
        client, code=fake_slack.issue_code(TEAM), state=slackkit_state(world)
    )
    assert status == 200
    assert fake_slack.calls_to("auth.revoke") == []
    assert await _audit(client, "token.revoked") == []


async def test_a_replaced_token_another_tenant_holds_is_kept(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.add_workspace(OTHER_TEAM, 3)
    shared = fake_slack.mint_token(TEAM)
    await install_token(client, world, shared, team_id=TEAM)
    await install_token(client, world, shared, tenant="beta", team_id=TEAM)
    status, _, _ = await _callback(
        client, code=fake_slack.issue_code(OTHER_TEAM), state=slackkit_state(world)
    )
    assert status == 200
    assert fake_slack.calls_to("auth.revoke") == []
    assert (await _audit(client, "token.revoked"))[0]["outcome"] == "kept_shared"


async def test_a_failing_revoke_does_not_fail_the_reinstall(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    from tests.fakes.slack import Failure

    fake_slack.add_workspace(OTHER_TEAM, 3)
    await install_token(client, world, fake_slack.mint_token(TEAM), team_id=TEAM)
    fake_slack.fail_next("auth.revoke", Failure(status=503))
    status, page, _ = await _callback(
        client, code=fake_slack.issue_code(OTHER_TEAM), state=slackkit_state(world)
    )
    assert (status, posted_message(page)["type"]) == (200, "authComplete")
    assert (await _audit(client, "token.revoked"))[0]["outcome"] == "failed"
