"""The Slack OAuth v2 redirect, driven as Slack drives it: GET with code (or error) and state."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.models import Recipient
from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import ALLOWED_ORIGIN
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import TEAM
from tests.state_variants import STATE_VARIANTS
from tests.support import World, posted_message, tenant_uri


def slackkit_state(world: World, tenant: str = "acme", **overrides: Any) -> str:
    """The state exactly as useSlackAuth.ts builds it (plain JSON.stringify)."""
    grants = {tenant_uri(tenant): {"slack/channels_read": [{}]}}
    state: dict[str, Any] = {
        "nonce": str(uuid.uuid4()),
        "redirect_url": f"{ALLOWED_ORIGIN}/settings/integrations",
        "access_token_object": {"object_id": tenant, "collection": "$tenants"},
        "channel_id": world.slack.id,
        "public_key": world.public_key,
        "user_token": world.user_token(grants=grants),
    }
    state.update(overrides)
    return json.dumps({k: v for k, v in state.items() if v is not None})


async def _callback(client: TestClient, **params: str) -> tuple[int, str, Any]:
    response = await client.get("/providers/slack/authenticate", params=params)
    return response.status, await response.text(), response.headers


async def _tenant_data(
    client: TestClient, world: World, tenant: str = "acme"
) -> dict[str, Any] | None:
    gateway = client.app[GATEWAY]
    environment = await gateway.environments.by_name(world.environment_name)
    assert environment is not None
    return await gateway.channel_data.get(
        environment.id, world.slack.id, Recipient.object("$tenants", tenant)
    )


async def test_install_stores_the_token_and_posts_auth_complete_with_the_nonce(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    # The tenant already has connections; the install must leave them alone.
    await client.put(
        f"/v1/objects/$tenants/acme/channel_data/{world.slack.id}",
        json={"data": {"connections": [{"channel_id": "C-existing"}]}},
        headers=world.secret_headers(),
    )
    state = slackkit_state(world)
    status, page, headers = await _callback(client, code=fake_slack.issue_code(TEAM), state=state)

    assert status == 200
    assert posted_message(page) == {"type": "authComplete", "nonce": json.loads(state)["nonce"]}
    assert "xox" not in page
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'nonce-" in headers["Content-Security-Policy"]

    data = await _tenant_data(client, world)
    assert data is not None
    assert data["connections"] == [{"channel_id": "C-existing"}]
    token = data["token"]
    assert token["access_token"].startswith("xoxb-")
    assert (token["team_id"], token["bot_user_id"], token["app_id"]) == (TEAM, "U0BOT", "A0TEST")

    exchange = fake_slack.calls_to("oauth.v2.access")[0]
    assert exchange.basic_auth == (world.slack.client_id, world.slack.client_secret.reveal())
    assert "redirect_uri" not in exchange.params

    auth_check = await client.get(
        f"/v1/providers/slack/{world.slack.id}/auth_check",
        params={"access_token_object": json.dumps({"collection": "$tenants", "object_id": "acme"})},
        headers=world.secret_headers(),
    )
    assert await auth_check.json() == {"connection": {"ok": True}}

    gateway = client.app[GATEWAY]
    events = await gateway.audit.recent()
    assert events[0].entry.action == "install"
    assert events[0].entry.actor == "user:user-1"
    assert token["access_token"] not in repr(events)


async def test_rotating_install_keeps_what_refresh_needs(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    fake_slack.rotation = True
    status, _, _ = await _callback(
        client, code=fake_slack.issue_code(TEAM), state=slackkit_state(world)
    )
    assert status == 200
    data = await _tenant_data(client, world)
    assert data is not None
    assert data["token"]["access_token"].startswith("xoxe.xoxb-")
    assert data["token"]["refresh_token"].startswith("xoxe-1-")
    assert data["token"]["expires_at"] > 0


def _failure_cases() -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("slack error", {"error": "access_denied"}, "access_denied"),
        ("invalid json", {"state": "{not json"}, "invalid_state"),
        ("no state", {"state": None}, "invalid_state"),
        (
            "forged public key",
            {"state_overrides": {"public_key": "pk_forged_key_value"}},
            "invalid_public_key",
        ),
        (
            "secret key in state",
            {"state_overrides": {"public_key": "sk_should_never_be_here"}},
            "invalid_public_key",
        ),
        (
            "unknown channel",
            {"state_overrides": {"channel_id": str(uuid.uuid4())}},
            "unknown_channel",
        ),
        ("teams channel", {"teams_channel": True}, "unknown_channel"),
        ("other tenant", {"other_tenant_token": True}, "not_authorized"),
        ("no user token", {"state_overrides": {"user_token": None}}, "invalid_user_token"),
        ("expired user token", {"expired_token": True}, "invalid_user_token"),
        ("missing code", {"code": None}, "missing_code"),
        ("bad code", {"code": "code-never-issued"}, "exchange_failed"),
    ]


@pytest.mark.parametrize(
    ("case", "setup", "reason"), _failure_cases(), ids=[c[0] for c in _failure_cases()]
)
async def test_failures_store_nothing_and_post_auth_failed_with_the_reason(
    client: TestClient,
    world: World,
    fake_slack: FakeSlack,
    case: str,
    setup: dict[str, Any],
    reason: str,
) -> None:
    overrides = dict(setup.get("state_overrides", {}))
    if setup.get("teams_channel"):
        overrides["channel_id"] = world.teams.id
    if setup.get("other_tenant_token"):
        overrides["user_token"] = world.user_token(
            grants={tenant_uri("evil"): {"slack/channels_read": [{}]}}
        )
    if setup.get("expired_token"):
        overrides["user_token"] = world.user_token(
            grants={tenant_uri("acme"): {"slack/channels_read": [{}]}}, expires_in=-600
        )
    state = setup["state"] if "state" in setup else slackkit_state(world, **overrides)
    params: dict[str, str] = {"state": state} if state is not None else {}
    code = setup["code"] if "code" in setup else fake_slack.issue_code(TEAM)
    if code is not None:
        params["code"] = code
    if "error" in setup:
        params = {"error": setup["error"], "state": slackkit_state(world)}

    status, page, _ = await _callback(client, **params)

    assert status == 400
    message = posted_message(page)
    assert message["type"] == "authFailed"
    assert message["reason"] == reason
    if state and "nonce" in state and "error" not in setup:
        assert message["nonce"] == json.loads(state)["nonce"]
    assert await _tenant_data(client, world) is None
    if reason not in {"exchange_failed"}:
        assert fake_slack.calls_to("oauth.v2.access") == []


async def test_a_replayed_state_is_refused(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    state = slackkit_state(world)
    first = await _callback(client, code=fake_slack.issue_code(TEAM), state=state)
    assert first[0] == 200
    token_after_first = (await _tenant_data(client, world) or {})["token"]
    replay = await _callback(client, code=fake_slack.issue_code(TEAM), state=state)
    assert replay[0] == 400
    assert posted_message(replay[1])["reason"] == "state_already_used"
    assert len(fake_slack.calls_to("oauth.v2.access")) == 1
    assert (await _tenant_data(client, world) or {})["token"] == token_after_first


# The verifier refuses a JWT whose base64url is not canonical before the state is claimed;
# the one-time key would match it anyway (tests/test_state_claims.py).
_REPLAY_REASONS = {
    name: "invalid_user_token" if name == "re-encoded user token" else "state_already_used"
    for name in STATE_VARIANTS
}


@pytest.mark.parametrize("variant", list(STATE_VARIANTS))
async def test_a_used_state_re_encoded_is_refused(
    client: TestClient, world: World, fake_slack: FakeSlack, variant: str
) -> None:
    state = slackkit_state(world)
    assert (await _callback(client, code=fake_slack.issue_code(TEAM), state=state))[0] == 200
    token_after_first = (await _tenant_data(client, world) or {})["token"]

    replay = STATE_VARIANTS[variant](state)
    status, page, _ = await _callback(client, code=fake_slack.issue_code(TEAM), state=replay)
    assert status == 400
    assert posted_message(page) == {
        "type": "authFailed",
        "nonce": json.loads(state)["nonce"],
        "reason": _REPLAY_REASONS[variant],
    }
    assert len(fake_slack.calls_to("oauth.v2.access")) == 1
    assert (await _tenant_data(client, world) or {})["token"] == token_after_first


async def test_redirect_only_to_allowed_origins(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    foreign = "https://evil.example/steal"
    _, page, _ = await _callback(
        client, code=fake_slack.issue_code(TEAM), state=slackkit_state(world, redirect_url=foreign)
    )
    assert "evil.example" not in page
    assert "*" not in page.split("var targetOrigins = ")[1].split(";")[0]
    assert f'var targetOrigins = ["{ALLOWED_ORIGIN}"]' in page
    assert "var redirect = null" in page

    allowed = f"{ALLOWED_ORIGIN}/after-install"
    _, page, _ = await _callback(
        client,
        code=fake_slack.issue_code(TEAM),
        state=slackkit_state(world, tenant="beta", redirect_url=allowed),
    )
    assert f'var redirect = "{allowed}"' in page
    assert f'var targetOrigins = ["{ALLOWED_ORIGIN}"]' in page


async def test_everything_echoed_is_escaped(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    nasty = '</script><script>alert("x")</script><!--'
    _, page, _ = await _callback(
        client, code=fake_slack.issue_code(TEAM), state=slackkit_state(world, nonce=nasty)
    )
    assert "<script>alert" not in page
    assert posted_message(page)["nonce"] == nasty
    _, page, _ = await _callback(client, error="<b>denied</b>", state=slackkit_state(world))
    assert "<b>" not in page
    assert posted_message(page)["reason"] == "provider_error"


async def test_the_code_never_reaches_the_access_log(
    client: TestClient, world: World, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    code = fake_slack.issue_code(TEAM)
    await _callback(client, code=code, state=slackkit_state(world))
    assert code not in caplog.text
    data = await _tenant_data(client, world)
    assert data is not None
    assert data["token"]["access_token"] not in caplog.text
