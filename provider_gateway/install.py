"""Checks shared by the OAuth redirects that SlackKit and TeamsKit start.

The browser sends no headers to a redirect URL, so every credential comes from the state the
component built: its public key and its user token, which must grant the tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol

from yarl import URL

from provider_gateway import inputs
from provider_gateway.auth import Principal
from provider_gateway.coordination import OneTimeKeys
from provider_gateway.errors import GatewayError, InvalidUserToken
from provider_gateway.gateway import Gateway
from provider_gateway.keys import api_key_kind
from provider_gateway.models import Channel, Provider, Recipient
from provider_gateway.state_claims import owner_digest, state_key, state_material
from provider_gateway.storage.outage import DatabaseUnavailable

log = logging.getLogger(__name__)
# A state is good for this long; the components' user tokens usually expire sooner anyway.
STATE_TTL_SECONDS = 24 * 3600
# The `error` values a provider's redirect may carry that are echoed as the failure reason:
# OAuth 2.0's (RFC 6749 §4.1.2.1) and OpenID Connect's (Core §3.1.2.6). Anything else is
# "provider_error": the reason labels a metric, and a callback must not mint new series.
PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)


MAX_STATE_BYTES = 8 * 1024


class ComponentState(Protocol):
    """What SlackKit's and TeamsKit's states have in common."""

    @property
    def redirect_url(self) -> str | None: ...
    @property
    def tenant(self) -> Recipient | None: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def public_key(self) -> str | None: ...
    @property
    def user_token(self) -> str | None: ...


def state_fields(
    raw: str | None, reference_key: str
) -> tuple[dict[str, str], Recipient | None] | None:
    """A component's plain-JSON state: its string fields, and the tenant object it names
    under `reference_key`. None when it is not a JSON object; wrong-typed fields read as absent."""
    if not raw or len(raw) > MAX_STATE_BYTES:
        return None
    try:
        data = inputs.loads(raw)  # deep nesting is a ValueError here, so: invalid_state
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    fields = {key: value for key, value in data.items() if _text(value)}
    reference = data.get(reference_key)
    tenant = None
    if isinstance(reference, dict):
        object_id, collection = reference.get("object_id"), reference.get("collection")
        if inputs.is_identifier(object_id) and inputs.is_identifier(collection):
            tenant = Recipient.object(collection, object_id)
    return fields, tenant


def _text(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 4096
        and not inputs.has_control_characters(value)
    )


# The reason an install fails with while the database is down: the popup says so (503 with
# Retry-After) and the user can connect again in a moment.
SERVICE_UNAVAILABLE = "service_unavailable"


class InstallFailed(Exception):
    """A named reason; the flow stores nothing and renders authFailed with it."""

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


@dataclass(frozen=True)
class Requester:
    principal: Principal
    channel: Channel


async def attempt(
    install: Awaitable[None], *, provider: Provider, nonce: str | None, redirect_url: str | None
) -> InstallOutcome:
    """Run an install; a failure becomes its named reason, for the authFailed page."""
    try:
        await install
    except InstallFailed as failure:
        log.info("install failed", extra={"provider": provider, "reason": failure.reason})
        return InstallOutcome(nonce, redirect_url, failure.reason)
    except DatabaseUnavailable as outage:
        return unavailable(outage, provider=provider, nonce=nonce, redirect_url=redirect_url)
    return InstallOutcome(nonce, redirect_url)


def unavailable(
    outage: DatabaseUnavailable, *, provider: Provider, nonce: str | None, redirect_url: str | None
) -> InstallOutcome:
    """A callback that met a database outage: the authFailed page, never a 500."""
    log.warning(
        "install failed: database unavailable: %s",
        outage,
        extra={"provider": provider, "reason": SERVICE_UNAVAILABLE},
    )
    return InstallOutcome(nonce, redirect_url, SERVICE_UNAVAILABLE)


def provider_error(error: str) -> InstallFailed:
    """The provider's `error` value if it is a standard one, else "provider_error"."""
    if error in PROVIDER_ERRORS:
        return InstallFailed(error)
    log.info("provider redirected with an unlisted error", extra={"error": error[:64]})
    return InstallFailed("provider_error")


def allowed_redirect(redirect_url: str | None, allowed_origins: frozenset[str]) -> str | None:
    """`redirect_url` if its origin is one we trust, else None: never an open redirect."""
    if not redirect_url:
        return None
    try:
        url = URL(redirect_url)
        origin = str(url.origin())
    except ValueError:
        return None
    if url.scheme not in {"http", "https"} or origin not in allowed_origins:
        return None
    return str(url)


def check_redirect(redirect_url: str | None, allowed_origins: frozenset[str]) -> None:
    if redirect_url and not allowed_redirect(redirect_url, allowed_origins):
        raise InstallFailed("invalid_redirect_url")  # never finish a flow for a foreign site


async def verify_requester(
    gateway: Gateway,
    *,
    public_key: str,
    user_token: str | None,
    channel_id: str,
    provider: Provider,
    tenant: Recipient,
    grant: str,
) -> Requester:
    if api_key_kind(public_key) != "public":
        raise InstallFailed("invalid_public_key")
    try:
        principal = await gateway.authenticator.authenticate(f"Bearer {public_key}", user_token)
    except InvalidUserToken:
        raise InstallFailed("invalid_user_token") from None
    except GatewayError:
        raise InstallFailed("invalid_public_key") from None
    try:
        channel = await gateway.channel_for(principal.environment.id, channel_id, provider)
    except GatewayError:
        raise InstallFailed("unknown_channel") from None
    if not principal.allows(grant, tenant):
        raise InstallFailed("not_authorized")
    return Requester(principal, channel)


async def admit(
    gateway: Gateway,
    params: Mapping[str, str],
    state: ComponentState | None,
    *,
    provider: Provider,
    grant: str,
    allowed_origins: frozenset[str],
) -> tuple[Requester, Recipient]:
    """The guard clauses every install starts with, in order: the provider's error, the
    state's shape, its redirect_url, then who is asking and whether they may."""
    if params.get("error"):
        raise provider_error(params["error"])
    if state is None or state.tenant is None or state.channel_id is None or not state.public_key:
        raise InstallFailed("invalid_state")
    check_redirect(state.redirect_url, allowed_origins)
    requester = await verify_requester(
        gateway,
        public_key=state.public_key,
        user_token=state.user_token,
        channel_id=state.channel_id,
        provider=provider,
        tenant=state.tenant,
        grant=grant,
    )
    return requester, state.tenant


async def claim_state(
    states: OneTimeKeys,
    provider: Provider,
    state: ComponentState,
    *,
    nonce: str | None = None,
    owner: str | None = None,
) -> None:
    """A state is used once, however its text is re-encoded; with an `owner`, it may be used
    again by that owner only."""
    assert state.channel_id is not None  # admit() checked both
    assert state.tenant is not None
    material = state_material(provider, state.channel_id, state.tenant, nonce, state.user_token)
    digest = owner_digest(material, owner) if owner is not None else None
    if not await states.claim(state_key(provider, material), STATE_TTL_SECONDS, owner=digest):
        raise InstallFailed("state_already_used")
