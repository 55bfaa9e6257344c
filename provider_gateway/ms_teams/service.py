"""Teams provider queries for a tenant: auth_check, teams, channels, revoke_access."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from provider_gateway.auth import MS_TEAMS_CHANNELS_READ, Principal
from provider_gateway.errors import Forbidden
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel, Recipient
from provider_gateway.ms_teams import models, permissions
from provider_gateway.ms_teams.client import GraphClient, GraphRefusal, tenant_pace
from provider_gateway.ms_teams.credentials import GraphTokens, TokenRefused
from provider_gateway.shared.listings import GenerationMemo, ListingCache
from provider_gateway.tenant_credentials import remove_credential

log = logging.getLogger(__name__)

TENANT_ID_NOT_SET = "Microsoft Teams tenant ID not set."
TEAMS_OPTIONS = ("$filter", "$select", "$top", "$skiptoken")
CHANNELS_OPTIONS = ("$filter", "$select")


class TeamsService:
    def __init__(
        self, gateway: Gateway, tokens: GraphTokens, graph: GraphClient, listings: ListingCache
    ) -> None:
        self._gateway = gateway
        self._tokens = tokens
        self._graph = graph
        self._listings = listings
        self._tenant_ids: GenerationMemo[str] = GenerationMemo()

    async def auth_check(
        self, principal: Principal, channel_id: str, tenant: Recipient
    ) -> dict[str, Any]:
        channel, tenant_id, _ = await self._connected(principal, channel_id, tenant)
        try:
            token = await self._tokens.token(channel, tenant_id)
            absent = permissions.missing(permissions.app_roles(token))
            if permissions.TEAMS not in absent:
                # The cheapest call that proves consent: one team id (needs Team.ReadBasic.All).
                await self._graph.list_teams(
                    token,
                    {"$top": "1", "$select": "id"},
                    pace=tenant_pace(channel.client_id, tenant_id),
                )
        except TokenRefused as refusal:
            return {
                "connection": {
                    "ok": False,
                    "reason": refusal.reason,
                    "ms_teams_tenant_id": tenant_id,
                }
            }
        except GraphRefusal as refusal:
            if not permissions.is_missing_role(refusal):
                return {
                    "connection": {
                        "ok": False,
                        "reason": refusal.code,
                        "ms_teams_tenant_id": tenant_id,
                    }
                }
            absent = [permissions.TEAMS, *absent]
        connection: dict[str, Any] = {"ok": True, "ms_teams_tenant_id": tenant_id}
        if absent:
            # Consented and connected, but the listings would be refused: say which grant is
            # missing, and drop our app token so the next check sees a new grant at once.
            await self._tokens.forget(channel, tenant_id)
            connection["missing_permissions"] = absent
            connection["reason"] = permissions.reason(absent)
        return {"connection": connection}

    async def list_teams(
        self, principal: Principal, channel_id: str, tenant: Recipient, options: Mapping[str, str]
    ) -> bytes:
        channel, tenant_id, generation = await self._connected(principal, channel_id, tenant)
        forwarded = models.odata_options(options, TEAMS_OPTIONS)

        async def load() -> dict[str, Any]:
            token = await self._app_token(channel, tenant_id)
            try:
                teams, skip_token = await self._graph.list_teams(
                    token, forwarded, pace=tenant_pace(channel.client_id, tenant_id)
                )
            except GraphRefusal as refusal:
                raise await self._refused(channel, tenant_id, refusal, permissions.TEAMS) from None
            return models.teams_response(teams, skip_token)

        return await self._cached(
            principal, channel, tenant, (tenant_id, generation), "teams.teams", forwarded, load
        )

    async def list_channels(
        self,
        principal: Principal,
        channel_id: str,
        tenant: Recipient,
        team_id: str,
        options: Mapping[str, str],
    ) -> bytes:
        channel, tenant_id, generation = await self._connected(principal, channel_id, tenant)
        forwarded = models.odata_options(options, CHANNELS_OPTIONS)

        async def load() -> dict[str, Any]:
            token = await self._app_token(channel, tenant_id)
            try:
                channels = await self._graph.list_channels(
                    token, team_id, forwarded, pace=tenant_pace(channel.client_id, tenant_id)
                )
            except GraphRefusal as refusal:
                raise await self._refused(
                    channel, tenant_id, refusal, permissions.CHANNELS
                ) from None
            return models.channels_response(channels, defaults="$filter" not in forwarded)

        query = {**forwarded, "team_id": team_id}
        return await self._cached(
            principal, channel, tenant, (tenant_id, generation), "teams.channels", query, load
        )

    async def _cached(
        self,
        principal: Principal,
        channel: Channel,
        tenant: Recipient,
        connection: tuple[str, str],
        kind: str,
        query: Mapping[str, str],
        load: Callable[[], Awaitable[dict[str, Any]]],
    ) -> bytes:
        tenant_id, generation = connection
        return await self._listings.get_or_load(
            principal.environment.id,
            channel.id,
            tenant,
            generation=generation,
            kind=kind,
            credential=f"{channel.client_id}:{tenant_id}",
            query=query,
            load=load,
        )

    async def revoke_access(self, principal: Principal, channel_id: str, tenant: Recipient) -> None:
        channel, tenant_id, _ = await self._connected(principal, channel_id, tenant)
        await remove_credential(
            self._gateway,
            environment_id=principal.environment.id,
            channel=channel,
            tenant=tenant,
            still_current=lambda stored: stored == tenant_id,  # a re-consent meanwhile stays
            actor=principal.actor,
            details={},
            sealed={"ms_teams_tenant_id": tenant_id},  # a directory id: encrypted, as stored
        )
        await self._tokens.forget(channel, tenant_id)
        log.info(
            "teams access revoked", extra={"tenant": tenant.describe(), "channel_id": channel.id}
        )

    async def authorize(self, principal: Principal, channel_id: str, tenant: Recipient) -> Channel:
        """May `principal` use this tenant's install on this channel? The channel, or an error."""
        principal.require(MS_TEAMS_CHANNELS_READ, tenant)
        return await self._gateway.channel_for(principal.environment.id, channel_id, "ms-teams")

    async def _connected(
        self, principal: Principal, channel_id: str, tenant: Recipient
    ) -> tuple[Channel, str, str]:
        """The channel, the tenant's Entra tenant id and the generation it was read at."""
        channel = await self.authorize(principal, channel_id, tenant)
        environment_id = principal.environment.id
        generation = await self._listings.generation(environment_id, channel.id, tenant)
        memo_key = (environment_id, channel.id, tenant.describe())
        tenant_id = self._tenant_ids.get(memo_key, generation)
        if tenant_id is None:
            data = await self._gateway.channel_data.get(environment_id, channel.id, tenant)
            stored = (data or {}).get("ms_teams_tenant_id")
            if not isinstance(stored, str) or not stored:
                raise Forbidden(TENANT_ID_NOT_SET)
            tenant_id = stored
            self._tenant_ids.put(memo_key, generation, tenant_id)
        return channel, tenant_id, generation

    async def _refused(
        self, channel: Channel, tenant_id: str, refusal: GraphRefusal, permission: str
    ) -> Exception:
        if not permissions.is_missing_role(refusal):
            return Forbidden(f"Microsoft Graph refused the app token: {refusal.code}")
        # Our cached app token predates any new grant: the next request fetches a fresh one.
        await self._tokens.forget(channel, tenant_id)
        return permissions.MissingPermission(permission)

    async def _app_token(self, channel: Channel, tenant_id: str) -> str:
        try:
            return await self._tokens.token(channel, tenant_id)
        except TokenRefused as refusal:
            raise Forbidden(
                f"Microsoft Entra refused an app token for this tenant: {refusal.reason}"
            ) from None
