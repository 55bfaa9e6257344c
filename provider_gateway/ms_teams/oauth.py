"""The Entra admin-consent redirect: verify, prove who consented, store the tenant id.

Microsoft's `tenant` value can be forged and its errors still carry admin_consent=True, so
`error` is checked first. An app token for the tenant proves only that *someone* consented
there once; so the first hop (the consent redirect) stores nothing and sends the popup through
an OpenID Connect sign-in at that tenant (ms_teams.signin), and the second hop (the sign-in's
redirect, same callback URL) stores the tenant only when the signed-in admin's id token is
from that directory, and an app token for it can be had.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

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
    check_redirect,
    claim_state,
    unavailable,
    verify_requester,
)
from provider_gateway.models import Recipient
from provider_gateway.ms_teams.credentials import (
    ID_TOKEN_REFUSALS,
    GraphTokens,
    SigninCode,
    TokenRefused,
)
from provider_gateway.ms_teams.models import TeamsState, tenant_guid
from provider_gateway.ms_teams.signin import (
    CALLBACK_PATH,
    PendingSignin,
    PendingSignins,
    authorize_url,
    check_id_token,
    is_signin_state,
    new_secret,
)
from provider_gateway.storage.outage import DatabaseUnavailable
from provider_gateway.tenant_credentials import store_credential

log = logging.getLogger(__name__)
_ERROR_CODE = re.compile(r"^[a-z0-9_]{1,64}$")


@dataclass(frozen=True)
class SigninRedirect:
    """The first hop's answer: send the popup to Entra's sign-in."""

    location: str


@dataclass(frozen=True)
class SigninUrls:
    """Where the sign-in happens and where it comes back."""

    public_url: str | None  # GATEWAY_PUBLIC_URL: the callback Entra knows
    browser_login_url: str  # the login host as the browser reaches it (MS_LOGIN_URL)


class TeamsInstaller:
    def __init__(
        self,
        gateway: Gateway,
        tokens: GraphTokens,
        states: OneTimeKeys,
        signins: PendingSignins,
        allowed_origins: frozenset[str],
        urls: SigninUrls,
    ) -> None:
        self._gateway = gateway
        self._tokens = tokens
        self._states = states
        self._signins = signins
        self._urls = urls
        self.allowed_origins = allowed_origins

    async def handle_callback(
        self, params: Mapping[str, str], arrived_at: str
    ) -> InstallOutcome | SigninRedirect:
        """`arrived_at`: this callback's URL as the request reached it (when no public URL
        is configured, the redirect URI Entra saw)."""
        raw_state = params.get("state")
        if is_signin_state(raw_state):
            assert raw_state is not None
            return await self._second_hop(params, raw_state)
        state = TeamsState.parse(raw_state)
        redirect_url = state.redirect_url if state else None
        try:
            return await self._first_hop(params, raw_state, state, arrived_at)
        except InstallFailed as failure:
            log.info("install failed", extra={"provider": "ms-teams", "reason": failure.reason})
            return InstallOutcome(None, redirect_url, failure.reason)
        except DatabaseUnavailable as outage:
            return unavailable(outage, provider="ms-teams", nonce=None, redirect_url=redirect_url)

    async def _first_hop(
        self,
        params: Mapping[str, str],
        raw_state: str | None,
        state: TeamsState | None,
        arrived_at: str,
    ) -> SigninRedirect:
        requester, _ = await admit(
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
        assert state is not None  # admit() found a state in it
        assert raw_state is not None
        # TeamsKit's state has no nonce: the same page (same user token) builds the same state
        # for every Connect, so Disconnect-then-Connect repeats it. It stays bound to the
        # directory that first used it; another directory replaying it is still refused.
        await claim_state(self._states, "ms-teams", state, owner=tenant_id)
        pending = PendingSignin(
            teams_state=raw_state,
            tenant_id=tenant_id,
            nonce=new_secret(),
            code_verifier=new_secret(),
            redirect_uri=self._callback_url(arrived_at),
        )
        signin_state = await self._signins.start(pending)
        location = authorize_url(
            self._urls.browser_login_url, requester.channel.client_id, pending, signin_state
        )
        log.info("teams consent: signing the admin in", extra={"channel_id": requester.channel.id})
        return SigninRedirect(location)

    def _callback_url(self, arrived_at: str) -> str:
        if self._urls.public_url:
            return self._urls.public_url + CALLBACK_PATH
        return arrived_at

    async def _second_hop(self, params: Mapping[str, str], signin_state: str) -> InstallOutcome:
        pending = await self._signins.take(signin_state)
        if pending is None:  # unknown, expired, or already used
            log.info("install failed", extra={"provider": "ms-teams", "reason": "invalid_state"})
            return InstallOutcome(None, None, "invalid_state")
        state = TeamsState.parse(pending.teams_state)
        return await attempt(
            self._finish(params, pending, state),
            provider="ms-teams",
            nonce=None,  # TeamsKit sends no nonce
            redirect_url=state.redirect_url if state else None,
        )

    async def _finish(
        self, params: Mapping[str, str], pending: PendingSignin, state: TeamsState | None
    ) -> None:
        if params.get("error"):
            error = params["error"]
            log.warning(
                "teams sign-in refused by Entra",
                extra={"entra_error": error if _ERROR_CODE.match(error) else "other"},
            )
            raise InstallFailed("signin_failed")
        code = params.get("code")
        if not code:
            raise InstallFailed("missing_code")
        requester, tenant = await self._requester_again(state)
        signin = SigninCode(code, pending.redirect_uri, pending.nonce, pending.code_verifier)
        try:
            claims = await self._tokens.redeem_signin(requester.channel, pending.tenant_id, signin)
        except TokenRefused as refusal:
            log.warning("teams sign-in code refused", extra={"entra_error": refusal.reason})
            bad_token = refusal.reason in ID_TOKEN_REFUSALS
            raise InstallFailed("invalid_id_token" if bad_token else "signin_failed") from None
        except GatewayError:
            raise InstallFailed("provider_unavailable") from None
        check_id_token(claims, pending=pending, client_id=requester.channel.client_id)
        await self._prove_consent(requester, pending.tenant_id)
        await self._store(requester, tenant, pending.tenant_id)

    async def _requester_again(self, state: TeamsState | None) -> tuple[Requester, Recipient]:
        """Who asked, checked again: a key revoked or a grant withdrawn since the first hop
        stops the install here."""
        if (
            state is None
            or state.tenant is None
            or state.channel_id is None
            or not state.public_key
        ):
            raise InstallFailed("invalid_state")
        check_redirect(state.redirect_url, self.allowed_origins)
        requester = await verify_requester(
            self._gateway,
            public_key=state.public_key,
            user_token=state.user_token,
            channel_id=state.channel_id,
            provider="ms-teams",
            tenant=state.tenant,
            grant=MS_TEAMS_CHANNELS_READ,
        )
        return requester, state.tenant

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
            details={"proven_by": "openid_signin"},
            sealed={"ms_teams_tenant_id": tenant_id},  # a directory id: encrypted, as stored
        )
        log.info(
            "teams consent completed", extra={"tenant": tenant.describe(), "channel_id": channel.id}
        )
