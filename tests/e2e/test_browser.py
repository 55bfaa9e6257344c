"""SlackKit and TeamsKit (the published @knocklabs/react) in headless Chromium, end to end.

browser.mjs drives the page like a person; at each checkpoint this test reads the gateway's
storage directly, so what the page shows and what is stored are checked at the same moment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.node import run_node
from tests.e2e.stack import RECIPIENT, SLACK_TEAM, Stack, write_config

SLACK_SCOPES = "chat:write,chat:write.public,channels:read,groups:read"  # SlackKit's defaults
CHECKPOINTS = [
    "user-identified",
    "slack-cancelled",
    "slack-connected",
    "slack-picked",
    "slack-disconnected",
    "slack-reconnected",
    "teams-cancelled",
    "teams-connected",
    "teams-picked",
    "teams-disconnected",
    "teams-reconnected",
]


class StorageChecks:
    """What the gateway must have stored when the page reaches each state."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.slack_tokens: list[str] = []

    async def __call__(self, name: str, details: dict[str, Any]) -> None:
        await getattr(self, name.replace("-", "_"))(**details)

    async def _slack_tenant(self) -> dict[str, Any]:
        data = await self.stack.stored(self.stack.world.slack, self.stack.tenant)
        assert data is not None
        return data

    async def _teams_tenant(self) -> dict[str, Any]:
        data = await self.stack.stored(self.stack.world.teams, self.stack.tenant)
        assert data is not None
        return data

    async def _installed_slack_token(self) -> str:
        token = (await self._slack_tenant())["token"]
        assert token["team_id"] == SLACK_TEAM
        access_token: str = token["access_token"]
        assert not self.stack.slack._tokens[access_token].revoked  # live at the fake Slack
        return access_token

    async def user_identified(self, user: dict[str, str]) -> None:
        """KnockProvider's identify stored the page's user, with the properties it was given."""
        environment_id = self.stack.world.slack.environment_id
        assert environment_id is not None
        stored = await self.stack.world.gateway.users.get(environment_id, user["id"])
        assert stored is not None, "no user was stored"
        assert stored.properties == {"name": user["name"], "email": user["email"]}

    async def slack_cancelled(self, nonce: str) -> None:
        """Cancel on Slack's page: the callback got error=access_denied and stored nothing."""
        slack = self.stack.slack
        assert json.loads(slack.authorize_requests[-1]["state"])["nonce"] == nonce
        assert slack.calls_to("oauth.v2.access") == []  # no code, so no exchange
        assert slack._tokens == {}
        stored = await self.stack.stored(self.stack.world.slack, self.stack.tenant)
        assert "token" not in (stored or {}), stored

    async def slack_connected(self, nonce: str) -> None:
        slack = self.stack.slack
        authorize = slack.authorize_requests[-1]
        assert authorize["client_id"] == self.stack.world.slack.client_id
        assert authorize["scope"] == SLACK_SCOPES
        assert json.loads(authorize["state"])["nonce"] == nonce
        exchange = slack.calls_to("oauth.v2.access")[-1]
        assert "redirect_uri" not in exchange.params  # none went to authorize either
        assert (await self._slack_tenant())["connections"] == []
        self.slack_tokens.append(await self._installed_slack_token())

    async def slack_picked(self, picked: list[str]) -> None:
        expected = [{"channel_id": self.stack.slack_channel_id(name)} for name in picked]
        stored = await self.stack.stored(self.stack.world.slack, RECIPIENT)
        assert stored == {"connections": expected}, stored
        assert await self._installed_slack_token() == self.slack_tokens[-1]

    async def slack_disconnected(self) -> None:
        assert "token" not in await self._slack_tenant()
        revoked = [call.token for call in self.stack.slack.calls_to("auth.revoke")]
        assert revoked == [self.slack_tokens[-1]]
        # SlackKit leaves the recipient's connections alone; they are useless without a token.
        stored = await self.stack.stored(self.stack.world.slack, RECIPIENT)
        assert len((stored or {}).get("connections", [])) == 2

    async def slack_reconnected(self) -> None:
        token = await self._installed_slack_token()
        assert token not in self.slack_tokens
        self.slack_tokens.append(token)

    async def teams_cancelled(self) -> None:
        """Cancel on Microsoft's page: no consent, no tenant id stored, no app token asked."""
        microsoft = self.stack.microsoft
        assert microsoft.consent_requests[-1]["client_id"] == self.stack.world.teams.client_id
        assert microsoft.consented == set()
        assert microsoft.token_requests == []
        assert microsoft.signin_requests == []  # the gateway sent no one on to sign in
        stored = await self.stack.stored(self.stack.world.teams, self.stack.tenant)
        assert "ms_teams_tenant_id" not in (stored or {}), stored

    async def teams_connected(self) -> None:
        microsoft = self.stack.microsoft
        consent = microsoft.consent_requests[-1]
        assert consent["client_id"] == self.stack.world.teams.client_id
        assert (
            consent["redirect_uri"] == f"{self.stack.gateway_url}/providers/ms-teams/authenticate"
        )
        assert await self._teams_tenant() == {
            "ms_teams_tenant_id": microsoft.consent_tenant,
            "connections": [],
        }
        # The admin signed in at that directory (the popup's second hop), the gateway
        # redeemed the code there, and proved consent with an app token before storing.
        sign_in = microsoft.signin_requests[-1]
        assert sign_in["tenant"] == microsoft.consent_tenant
        assert sign_in["client_id"] == self.stack.world.teams.client_id
        assert sign_in["redirect_uri"] == consent["redirect_uri"]
        assert (sign_in["response_type"], sign_in["scope"]) == ("code", "openid")
        assert [(r["tenant"], r["grant_type"]) for r in microsoft.token_requests] == [
            (microsoft.consent_tenant, "authorization_code"),
            (microsoft.consent_tenant, "client_credentials"),
        ]

    async def teams_picked(self, picked: list[str]) -> None:
        team = self.stack.teams_teams()[0]
        by_name = {c["displayName"]: c["id"] for c in self.stack.teams_channels(team["id"])}
        expected = [
            {"ms_teams_team_id": team["id"], "ms_teams_channel_id": by_name[name]}
            for name in picked
        ]
        stored = await self.stack.stored(self.stack.world.teams, RECIPIENT)
        assert stored == {"connections": expected}, stored

    async def teams_disconnected(self) -> None:
        assert "ms_teams_tenant_id" not in await self._teams_tenant()

    async def teams_reconnected(self) -> None:
        tenant = await self._teams_tenant()
        assert tenant["ms_teams_tenant_id"] == self.stack.microsoft.consent_tenant


async def test_slackkit_and_teamskit_connect_pick_and_disconnect(
    stack: Stack, tmp_path: Path, output_dir: Path
) -> None:
    config = write_config(stack, tmp_path / "config.json", screenshotDir=str(output_dir))
    checks = StorageChecks(stack)
    run = await run_node(["browser.mjs", str(config)], env={}, check=checks)
    assert run.returncode == 0, run.output
    assert run.checkpoints == CHECKPOINTS, run.output
    screenshots = sorted(path.name for path in output_dir.glob("*.png"))  # noqa: ASYNC240
    assert len(screenshots) == 18, screenshots
    print(f"screenshots: {output_dir}")
