"""The Slack OAuth v2 redirect: verify, exchange the code, store the bot token on the tenant.

Guard clauses in order; each failure has a named reason, stores nothing, and is rendered by
the one failure page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from provider_gateway.auth import SLACK_CHANNELS_READ, Principal
from provider_gateway.coordination import OneTimeKeys
from provider_gateway.errors import GatewayError
from provider_gateway.gateway import Gateway
from provider_gateway.install import (
    InstallFailed,
    InstallOutcome,
    admit,
    attempt,
    claim_state,
)
from provider_gateway.models import Channel, Recipient
from provider_gateway.slack.client import ALREADY_REVOKED, SlackClient, SlackRefusal
from provider_gateway.slack.models import SlackState, holds_token, installed_token
from provider_gateway.slack.pacing import Workspace
from provider_gateway.storage.audit import AuditEntry
from provider_gateway.tenant_credentials import store_credential

log = logging.getLogger(__name__)


class SlackInstaller:
    def __init__(
        self,
        gateway: Gateway,
        client: SlackClient,
        states: OneTimeKeys,
        allowed_origins: frozenset[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gateway = gateway
        self._client = client
        self._states = states
        self.allowed_origins = allowed_origins
        self._clock = clock

    async def handle_callback(self, params: Mapping[str, str]) -> InstallOutcome:
        state = SlackState.parse(params.get("state"))
        return await attempt(
            self._install(params, state),
            provider="slack",
            nonce=state.nonce if state else None,
            redirect_url=state.redirect_url if state else None,
        )

    async def _install(self, params: Mapping[str, str], state: SlackState | None) -> None:
        requester, tenant = await admit(
            self._gateway,
            params,
            state,
            provider="slack",
            grant=SLACK_CHANNELS_READ,
            allowed_origins=self.allowed_origins,
        )
        principal, channel = requester.principal, requester.channel
        code = params.get("code")
        if not code:
            raise InstallFailed("missing_code")
        assert state is not None  # admit() found a state in it
        await claim_state(self._states, "slack", state, nonce=state.nonce)
        reply = await self._exchange(channel, code)
        if channel.app_id and reply.get("app_id") and reply["app_id"] != channel.app_id:
            raise InstallFailed("app_mismatch")
        await self._store(
            principal, channel, tenant, installed_token(reply, now=int(self._clock()))
        )

    async def _exchange(self, channel: Channel, code: str) -> dict[str, Any]:
        try:
            reply = await self._client.oauth_v2_access(
                channel.client_id, channel.client_secret.reveal(), code
            )
        except SlackRefusal as refusal:
            log.warning("slack code exchange refused", extra={"slack_error": refusal.error})
            raise InstallFailed("exchange_failed") from None
        except GatewayError as error:
            log.warning("slack code exchange failed", extra={"error_code": error.code})
            raise InstallFailed("exchange_failed") from None
        if not reply.get("access_token"):
            raise InstallFailed("exchange_failed")
        return reply

    async def _store(
        self, principal: Principal, channel: Channel, tenant: Recipient, token: dict[str, Any]
    ) -> None:
        replaced = await store_credential(
            self._gateway,
            environment_id=principal.environment.id,
            channel=channel,
            tenant=tenant,
            value=token,
            actor=principal.actor,
            details={
                "team_id": token.get("team_id"),
                "enterprise_id": token.get("enterprise_id"),
                "app_id": token.get("app_id"),
                "scope": token.get("scope"),
                "rotating": "refresh_token" in token,
            },
        )
        log.info(
            "slack install completed",
            extra={
                "tenant": tenant.describe(),
                "team_id": token.get("team_id"),
                "channel_id": channel.id,
            },
        )
        if (
            isinstance(replaced, dict)
            and replaced.get("access_token")
            and _install(replaced) != _install(token)
        ):
            await self._retire(principal.environment.id, channel, tenant, replaced)

    async def _retire(
        self, environment_id: str, channel: Channel, tenant: Recipient, replaced: dict[str, Any]
    ) -> None:
        """Revoke the token of the install this tenant left for another workspace, so it does
        not stay live with nobody holding it; best effort and audited.

        Only for another install: Slack deactivates a revoked token's bot user, so revoking a
        token replaced within the same workspace (rotation, reinstall) would break the new one.
        Kept when another tenant holds it (two tenants on one workspace share one bot token).
        """
        old = replaced["access_token"]
        try:
            if await self._held_elsewhere(channel, replaced):
                outcome = "kept_shared"
            else:
                outcome = await self._revoke(old, Workspace.of(channel.client_id, replaced))
            await self._gateway.audit.append(
                AuditEntry(
                    "token.revoked",
                    "gateway",
                    environment_id=environment_id,
                    channel_id=channel.id,
                    target=tenant.describe(),
                    details={
                        "provider": "slack",
                        "reason": "replaced_by_reinstall",
                        "team_id": replaced.get("team_id"),
                        "outcome": outcome,
                    },
                )
            )
        except Exception:  # the install is stored: a failed clean-up must not fail it
            log.warning("could not retire a replaced slack token", exc_info=True)
            return
        log.info("replaced slack token retired", extra={"outcome": outcome})

    async def _held_elsewhere(self, channel: Channel, replaced: dict[str, Any]) -> bool:
        """Does any tenant of this Slack app (on any of its channels) still hold the token?
        Found by the install's blind index; a token stored without its workspace (a secret
        key may write a bare access_token) needs a look at every row of the channel."""
        holds = holds_token(replaced["access_token"])
        team_id, enterprise_id = replaced.get("team_id"), replaced.get("enterprise_id")
        store = self._gateway.channel_data
        for other in await self._gateway.channels.all():
            if other.provider != "slack" or other.client_id != channel.client_id:
                continue
            rows = (
                await store.for_slack_install(
                    other.id, team_id=team_id, enterprise_id=enterprise_id
                )
                if team_id or enterprise_id
                else await store.for_channel(other.id)
            )
            if any(holds(data.get("token")) for _, _, data in rows):
                return True
        return False

    async def _revoke(self, access_token: str, workspace: Workspace) -> str:
        try:
            await self._client.auth_revoke(access_token, workspace=workspace)
        except SlackRefusal as refusal:
            return "already_revoked" if refusal.error in ALREADY_REVOKED else "refused"
        except GatewayError:
            return "failed"
        return "revoked"


def _install(token: dict[str, Any]) -> tuple[object, ...]:
    """Which Slack install a stored token belongs to: its workspace or Grid org."""
    org = bool(token.get("is_enterprise_install"))
    return (None if org else token.get("team_id"), token.get("enterprise_id"), org)
