"""The Entra admin-consent redirect: verify, prove consent, store the tenant id on the tenant.

Microsoft's `tenant` value can be forged and its errors still carry admin_consent=True, so
`error` is checked first and consent is proven by fetching an app token for that tenant
before anything is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from provider_gateway.auth import MS_TEAMS_CHANNELS_READ
from provider_gateway.coordination import OneTimeKeys
from provider_gateway.errors import GatewayError
from provider_gateway.gateway import Gateway
from provider_gateway.install import (
    InstallFailed,
    InstallOutcome,
    Requester,
    admit,
    attempt,
    claim_state,
)
from provider_gateway.models import Recipient
from provider_gateway.ms_teams.credentials import GraphTokens, TokenRefused
from provider_gateway.ms_teams.models import TeamsState, tenant_guid
from provider_gateway.tenant_credentials import store_credential

log = logging.getLogger(__name__)


class TeamsInstaller:
    def __init__(
        self,
        gateway: Gateway,
        tokens: GraphTokens,
        states: OneTimeKeys,
        allowed_origins: frozenset[str],
    ) -> None:
        self._gateway = gateway
        self._tokens = tokens
        self._states = states
        self.allowed_origins = allowed_origins

    async def handle_callback(self, params: Mapping[str, str]) -> InstallOutcome:
        raw_state = params.get("state")
        state = TeamsState.parse(raw_state)
        return await attempt(
            self._install(params, raw_state, state),
            provider="ms-teams",
            nonce=None,  # TeamsKit sends no nonce
            redirect_url=state.redirect_url if state else None,
        )

    async def _install(
        self, params: Mapping[str, str], raw_state: str | None, state: TeamsState | None
    ) -> None:
        requester, tenant = await admit(
            self._gateway,
            params,
            state,
            provider="ms-teams",
            grant=MS_TEAMS_CHANNELS_READ,
            allowed_origins=self.allowed_origins,
        )
        if params.get("admin_consent", "").lower() != "true":
            raise InstallFailed("consent_not_granted")
        tenant_id = tenant_guid(params.get("tenant"))
        if tenant_id is None:
            raise InstallFailed("invalid_tenant")
        assert raw_state is not None  # admit() found a state in it
        # TeamsKit's state has no nonce: the same page (same user token) builds the same state
        # for every Connect, so Disconnect-then-Connect repeats it. It stays bound to the
        # directory that first used it; another directory replaying it is still refused.
        await claim_state(self._states, "ms-teams", raw_state, owner=tenant_id)
        await self._prove_consent(requester, tenant_id)
        await self._store(requester, tenant, tenant_id)

    async def _prove_consent(self, requester: Requester, tenant_id: str) -> None:
        try:
            await self._tokens.token(requester.channel, tenant_id)
        except TokenRefused as refusal:
            log.warning("teams consent not verified", extra={"entra_error": refusal.reason})
            raise InstallFailed("consent_not_verified") from None
        except GatewayError:
            raise InstallFailed("provider_unavailable") from None

    async def _store(self, requester: Requester, tenant: Recipient, tenant_id: str) -> None:
        principal, channel = requester.principal, requester.channel
        await store_credential(
            self._gateway,
            environment_id=principal.environment.id,
            channel=channel,
            tenant=tenant,
            value=tenant_id,
            actor=principal.actor,
            details={},
            sealed={"ms_teams_tenant_id": tenant_id},  # a directory id: encrypted, as stored
        )
        log.info(
            "teams consent completed", extra={"tenant": tenant.describe(), "channel_id": channel.id}
        )
