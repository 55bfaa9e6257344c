"""The Slack OAuth v2 redirect: verify, exchange the code, store the bot token on the tenant.

Guard clauses in order; each failure has a named reason, stores nothing, and is rendered by
the one failure page. The browser sends no headers here, so every credential comes from the
state SlackKit built: its public key, its user token (which must grant this tenant).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from provider_gateway.auth import SLACK_CHANNELS_READ, Principal
from provider_gateway.coordination import OneTimeKeys
from provider_gateway.errors import GatewayError, InvalidUserToken
from provider_gateway.gateway import Gateway
from provider_gateway.keys import api_key_kind
from provider_gateway.models import Channel
from provider_gateway.oauth_page import allowed_redirect
from provider_gateway.slack.client import SlackClient, SlackRefusal
from provider_gateway.slack.models import SlackState, installed_token
from provider_gateway.storage.audit import AuditEntry

log = logging.getLogger(__name__)

# A state is good for this long; SlackKit's user tokens usually expire sooner anyway.
STATE_TTL_SECONDS = 24 * 3600
_REASON = re.compile(r"^[a-z0-9_]{1,64}$")


class InstallFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InstallOutcome:
    nonce: str | None
    redirect_url: str | None
    reason: str | None = None  # None: installed

    @property
    def ok(self) -> bool:
        return self.reason is None


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
        raw_state = params.get("state")
        state = SlackState.parse(raw_state)
        nonce = state.nonce if state else None
        redirect_url = state.redirect_url if state else None
        try:
            await self._install(params, raw_state, state)
        except InstallFailed as failure:
            log.info("slack install failed", extra={"reason": failure.reason})
            return InstallOutcome(nonce, redirect_url, failure.reason)
        return InstallOutcome(nonce, redirect_url)

    async def _install(
        self, params: Mapping[str, str], raw_state: str | None, state: SlackState | None
    ) -> None:
        if params.get("error"):
            raise InstallFailed(_reason(params["error"]))
        if state is None or raw_state is None:
            raise InstallFailed("invalid_state")
        if state.tenant is None or state.channel_id is None or state.public_key is None:
            raise InstallFailed("invalid_state")
        if state.redirect_url and not allowed_redirect(state.redirect_url, self.allowed_origins):
            raise InstallFailed("invalid_redirect_url")  # never finish a flow for a foreign site
        principal = await self._principal(state.public_key, state.user_token)
        channel = await self._slack_channel(principal, state.channel_id)
        if not principal.allows(SLACK_CHANNELS_READ, state.tenant):
            raise InstallFailed("not_authorized")
        code = params.get("code")
        if not code:
            raise InstallFailed("missing_code")
        state_key = "slack-oauth-state:" + hashlib.sha256(raw_state.encode()).hexdigest()
        if not await self._states.claim(state_key, STATE_TTL_SECONDS):
            raise InstallFailed("state_already_used")
        reply = await self._exchange(channel, code)
        if channel.app_id and reply.get("app_id") and reply["app_id"] != channel.app_id:
            raise InstallFailed("app_mismatch")
        await self._store(principal, channel, state, installed_token(reply, now=int(self._clock())))

    async def _principal(self, public_key: str, user_token: str | None) -> Principal:
        if api_key_kind(public_key) != "public":
            raise InstallFailed("invalid_public_key")
        try:
            principal = await self._gateway.authenticator.authenticate(
                f"Bearer {public_key}", user_token
            )
        except InvalidUserToken:
            raise InstallFailed("invalid_user_token") from None
        except GatewayError:
            raise InstallFailed("invalid_public_key") from None
        return principal

    async def _slack_channel(self, principal: Principal, channel_id: str) -> Channel:
        try:
            return await self._gateway.channel_for(principal.environment.id, channel_id, "slack")
        except GatewayError:
            raise InstallFailed("unknown_channel") from None

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
        self, principal: Principal, channel: Channel, state: SlackState, token: dict[str, Any]
    ) -> None:
        tenant = state.tenant
        assert tenant is not None
        environment_id = principal.environment.id

        def put_token(stored: dict[str, Any] | None) -> dict[str, Any]:
            data = dict(stored or {})
            data["token"] = token  # the tenant's connections are left exactly as they were
            data.setdefault("connections", [])
            return data

        await self._gateway.channel_data.update(
            environment_id,
            channel.id,
            tenant,
            put_token,
            lambda old, new: AuditEntry(
                "install",
                principal.actor,
                environment_id=environment_id,
                channel_id=channel.id,
                target=tenant.describe(),
                details={
                    "provider": "slack",
                    "team_id": token.get("team_id"),
                    "enterprise_id": token.get("enterprise_id"),
                    "app_id": token.get("app_id"),
                    "scope": token.get("scope"),
                    "rotating": "refresh_token" in token,
                },
            ),
        )
        log.info(
            "slack install completed",
            extra={
                "tenant": tenant.describe(),
                "team_id": token.get("team_id"),
                "channel_id": channel.id,
            },
        )


def _reason(error: str) -> str:
    """Slack's `error` value, echoed only if it looks like an error code."""
    return error if _REASON.match(error) else "slack_error"
