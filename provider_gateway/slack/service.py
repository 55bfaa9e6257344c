"""Slack provider queries for a tenant: auth_check, channels, revoke_access, token rotation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from provider_gateway.auth import SLACK_CHANNELS_READ, Principal
from provider_gateway.coordination import KeyedLocks
from provider_gateway.errors import Forbidden, InvalidParams, UpstreamError
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel, Recipient
from provider_gateway.shared.listings import GenerationMemo, ListingCache
from provider_gateway.slack import models, scopes
from provider_gateway.slack.client import ALREADY_REVOKED, SlackClient, SlackRefusal
from provider_gateway.slack.pacing import Workspace
from provider_gateway.storage.audit import AuditEntry
from provider_gateway.tenant_credentials import remove_credential

log = logging.getLogger(__name__)

ACCESS_TOKEN_NOT_SET = "Access token not set."  # noqa: S105 - the message Knock sends
# Refresh this long before expiry, so no request goes out with a token about to lapse.
REFRESH_LEEWAY_SECONDS = 300
# auth.test / conversations.list errors that mean "this token no longer works".
TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "org_login_required",
        "ekm_access_denied",
        "invalid_refresh_token",
    }
)
_LISTING_PARAM_ERRORS = {
    "invalid_cursor": "query_options.cursor",
    "invalid_limit": "query_options.limit",
    "invalid_types": "query_options.types",
    "missing_argument": "query_options.team_id",
    "team_access_not_granted": "query_options.team_id",
    "invalid_team": "query_options.team_id",
}


class SlackService:
    def __init__(
        self,
        gateway: Gateway,
        client: SlackClient,
        locks: KeyedLocks,
        listings: ListingCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gateway = gateway
        self._client = client
        self._locks = locks
        self._listings = listings
        self._token_memo: GenerationMemo[dict[str, Any]] = GenerationMemo()
        self._clock = clock

    @property
    def client(self) -> SlackClient:
        return self._client

    async def auth_check(
        self, principal: Principal, channel_id: str, tenant: Recipient
    ) -> dict[str, Any]:
        channel = await self.authorize(principal, channel_id, tenant)
        try:
            token = await self._usable_token(principal.environment.id, channel, tenant)
            tested = await self._client.auth_test(
                token["access_token"], workspace=Workspace.of(channel.client_id, token)
            )
        except SlackRefusal as refusal:
            return {"connection": {"ok": False, "reason": refusal.error, "error": refusal.error}}
        connection: dict[str, Any] = {"ok": True}
        # The token works, but the combobox's listing would fail without these: say so now.
        if missing := scopes.missing_for_listing(tested.scopes):
            connection["missing_scopes"] = missing
        return {"connection": connection}

    async def list_channels(
        self, principal: Principal, channel_id: str, tenant: Recipient, query: models.ChannelQuery
    ) -> bytes:
        """A page as JSON bytes; a cached page costs no database read (see GenerationMemo)."""
        channel = await self.authorize(principal, channel_id, tenant)
        environment_id = principal.environment.id
        generation = await self._listings.generation(environment_id, channel.id, tenant)
        memo_key = (environment_id, channel.id, tenant.describe())
        token = self._token_memo.get(memo_key, generation)
        if token is None or self._needs_refresh(token):
            try:
                token = await self._usable_token(environment_id, channel, tenant)
            except SlackRefusal as refusal:
                raise _listing_error(refusal, query.types) from None
            # Kept under the generation read *before* the database: a write landing after it
            # bumps the generation, so this copy is never read again. Read after, it could
            # file an old token under the new generation (as ms_teams/service.py avoids too).
            self._token_memo.put(memo_key, generation, token)
        access_token = token["access_token"]
        if token.get("is_enterprise_install") and not query.team_id:
            # An org-wide (Enterprise Grid) token spans workspaces: Slack needs to be told which.
            raise InvalidParams.field(
                "query_options.team_id", "is required for an org-wide (Enterprise Grid) install"
            )
        team_id = query.team_id or token.get("team_id")

        async def load() -> dict[str, Any]:
            workspace = Workspace.of(channel.client_id, token)  # only on a miss
            try:
                reply = await self._client.conversations_list(
                    access_token,
                    cursor=query.cursor,
                    limit=query.limit,
                    exclude_archived=query.exclude_archived,
                    types=query.types,
                    team_id=query.team_id,
                    workspace=workspace,
                )
            except SlackRefusal as refusal:
                raise _listing_error(refusal, query.types) from None
            return models.channels_response(reply, default_team_id=team_id)

        return await self._listings.get_or_load(
            environment_id,
            channel.id,
            tenant,
            generation=generation,
            kind="slack.channels",
            credential=access_token,
            query=vars(query),  # flat fields; asdict deep-copies, a third of a cache hit
            load=load,
        )

    async def revoke_access(self, principal: Principal, channel_id: str, tenant: Recipient) -> None:
        channel = await self.authorize(principal, channel_id, tenant)
        environment_id = principal.environment.id
        token = await self._stored_token(environment_id, channel, tenant)
        if token is None:
            raise Forbidden(ACCESS_TOKEN_NOT_SET)
        try:
            await self._client.auth_revoke(
                token["access_token"], workspace=Workspace.of(channel.client_id, token)
            )
        except SlackRefusal as refusal:
            if refusal.error not in ALREADY_REVOKED:
                raise UpstreamError(f"Slack refused auth.revoke: {refusal.error}") from None

        revoked = token["access_token"]
        await remove_credential(
            self._gateway,
            environment_id=environment_id,
            channel=channel,
            tenant=tenant,
            still_current=models.holds_token(revoked),
            actor=principal.actor,
            details={"team_id": token.get("team_id")},
        )
        log.info(
            "slack access revoked", extra={"tenant": tenant.describe(), "channel_id": channel.id}
        )

    async def authorize(self, principal: Principal, channel_id: str, tenant: Recipient) -> Channel:
        """May `principal` use this tenant's install on this channel? The channel, or an error."""
        principal.require(SLACK_CHANNELS_READ, tenant)
        return await self._gateway.channel_for(principal.environment.id, channel_id, "slack")

    async def _stored_token(
        self, environment_id: str, channel: Channel, tenant: Recipient
    ) -> dict[str, Any] | None:
        data = await self._gateway.channel_data.get(environment_id, channel.id, tenant)
        token = (data or {}).get("token")
        if not isinstance(token, dict) or not token.get("access_token"):
            return None
        return token

    async def _usable_token(
        self, environment_id: str, channel: Channel, tenant: Recipient
    ) -> dict[str, Any]:
        token = await self._stored_token(environment_id, channel, tenant)
        if token is None:
            raise Forbidden(ACCESS_TOKEN_NOT_SET)
        if self._needs_refresh(token):
            token = await self._refresh(environment_id, channel, tenant)
        return token

    def _needs_refresh(self, token: dict[str, Any]) -> bool:
        expires_at = token.get("expires_at")
        return (
            bool(token.get("refresh_token"))
            and isinstance(expires_at, int)
            and expires_at - REFRESH_LEEWAY_SECONDS <= self._clock()
        )

    async def _refresh(
        self, environment_id: str, channel: Channel, tenant: Recipient
    ) -> dict[str, Any]:
        """One refresh however many requests need it: Slack refresh tokens are single-use."""
        async with self._locks.hold(
            f"slack-refresh:{environment_id}:{channel.id}:{tenant.describe()}"
        ):
            token = await self._stored_token(environment_id, channel, tenant)
            if token is None:
                raise Forbidden(ACCESS_TOKEN_NOT_SET)
            if not self._needs_refresh(token):
                return token  # another request refreshed it while we waited
            used_refresh_token = token["refresh_token"]
            reply = await self._client.oauth_v2_refresh(
                channel.client_id, channel.client_secret.reveal(), used_refresh_token
            )
            refreshed = models.refreshed_token(token, reply, now=int(self._clock()))

            def swap(stored: dict[str, Any] | None) -> dict[str, Any] | None:
                current = (stored or {}).get("token") or {}
                if stored is None or current.get("refresh_token") != used_refresh_token:
                    return stored  # revoked or reinstalled meanwhile: leave that alone
                return {**stored, "token": refreshed}

            await self._gateway.channel_data.update(
                environment_id,
                channel.id,
                tenant,
                swap,
                lambda old, new: AuditEntry(
                    "token.refreshed",
                    "gateway",
                    environment_id=environment_id,
                    channel_id=channel.id,
                    target=tenant.describe(),
                    details={"provider": "slack", "team_id": token.get("team_id")},
                ),
            )
            return refreshed


def _listing_error(refusal: SlackRefusal, types: str) -> Exception:
    if refusal.error == "missing_scope":
        return scopes.MissingScope.from_refusal(refusal, types)
    if refusal.error in TOKEN_ERRORS:
        return Forbidden(f"Slack refused the access token: {refusal.error}")
    field = _LISTING_PARAM_ERRORS.get(refusal.error)
    if field is not None:
        return InvalidParams.field(field, f"Slack refused it: {refusal.error}")
    return UpstreamError(f"Slack refused conversations.list: {refusal.error}")
