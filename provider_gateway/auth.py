"""Who is calling: `sk_` keys, or `pk_` keys plus an RS256 user token with Knock's grants."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import RSAKey

from provider_gateway.errors import (
    ApiKeyMissing,
    Forbidden,
    InvalidApiKey,
    InvalidUserToken,
)
from provider_gateway.keys import KeyKind, api_key_kind
from provider_gateway.models import Environment, Recipient
from provider_gateway.storage.credentials import ApiKeyMatch, CredentialStore

CHANNEL_DATA_READ = "channel_data/read"
CHANNEL_DATA_WRITE = "channel_data/write"
SLACK_CHANNELS_READ = "slack/channels_read"
MS_TEAMS_CHANNELS_READ = "ms_teams/channels_read"

_CLOCK_SKEW_SECONDS = 30
# How long a replica trusts a key lookup: `keys revoke` must reach every replica within 5 s
# (CONTRACT §4), without a database read per request.
LOOKUP_TTL_SECONDS = 4.0
_MAX_USER_TOKEN_BYTES = 16 * 1024

EntityPath = tuple[str, ...]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a secret key, or a public key acting for one user."""

    environment: Environment
    kind: KeyKind
    key_hint: str
    user_id: str | None = None
    grants: Mapping[EntityPath, frozenset[str]] = field(default_factory=dict)

    @property
    def is_secret(self) -> bool:
        return self.kind == "secret"

    @property
    def actor(self) -> str:
        if self.is_secret:
            return f"secret_key:{self.key_hint}"
        return f"user:{self.user_id}"

    def allows(self, grant: str, recipient: Recipient) -> bool:
        if self.is_secret:
            return True
        if (
            recipient.kind == "user"
            and recipient.id == self.user_id
            and grant.startswith("channel_data/")
        ):
            return True  # a user may always read and write their own channel data
        return grant in self.grants.get(recipient.entity_path, frozenset())

    def require(self, grant: str, recipient: Recipient) -> None:
        if not self.allows(grant, recipient):
            raise Forbidden(f"The user token does not grant {grant} on {recipient.describe()}")


def entity_path(uri: str) -> EntityPath:
    """`https://api.knock.app/v1/objects/$tenants/acme` -> ("v1", "objects", "$tenants", "acme").

    Grants are matched by path whatever the host, so the same tokens work against this gateway.
    """
    return tuple(unquote(part) for part in urlsplit(uri).path.split("/") if part)


def parse_grants(claim: object) -> dict[EntityPath, frozenset[str]]:
    if claim is None:
        return {}
    if not isinstance(claim, dict):
        raise InvalidUserToken("The user token's grants claim must be an object")
    grants: dict[EntityPath, frozenset[str]] = {}
    for uri, entitlements in claim.items():
        if not isinstance(uri, str) or not isinstance(entitlements, dict):
            raise InvalidUserToken("The user token's grants must map entity URIs to objects")
        try:
            path = entity_path(uri)
        except ValueError:  # urlsplit refuses e.g. "http://[": a bad grant, not a 500
            raise InvalidUserToken(f"The user token's grant {uri[:64]!r} is not a URI") from None
        grants[path] = grants.get(path, frozenset()) | frozenset(str(g) for g in entitlements)
    return grants


class Authenticator:
    """Resolves credentials to a `Principal`; key lookups are cached briefly in-process."""

    def __init__(self, credentials: CredentialStore, *, max_token_lifetime: int = 0) -> None:
        self._credentials = credentials
        self._max_token_lifetime = max_token_lifetime  # seconds; 0: no maximum
        self._api_keys: dict[str, tuple[float, ApiKeyMatch | None]] = {}
        self._signing_keys: dict[str, tuple[float, list[RSAKey]]] = {}

    async def authenticate(self, authorization: str | None, user_token: str | None) -> Principal:
        api_key = _bearer(authorization)
        if api_key is None:
            raise ApiKeyMissing()
        if api_key_kind(api_key) is None:
            raise InvalidApiKey()
        match = await self._api_key(api_key)
        if match is None:
            raise InvalidApiKey()
        if match.kind == "secret":
            return Principal(match.environment, "secret", match.hint)
        if not user_token:
            raise InvalidUserToken(
                "A public key needs a user token (X-Knock-User-Token) signed with the "
                "environment's signing key"
            )
        claims = await self._verify(match.environment, user_token)
        return Principal(
            environment=match.environment,
            kind="public",
            key_hint=match.hint,
            user_id=str(claims["sub"]),
            grants=parse_grants(claims.get("grants")),
        )

    async def _verify(self, environment: Environment, token: str) -> dict[str, Any]:
        if len(token) > _MAX_USER_TOKEN_BYTES:
            raise InvalidUserToken()
        keys = await self._keys(environment.id)
        decoded = None
        for key in keys:
            try:
                decoded = jwt.decode(token, key, algorithms=["RS256"])
                break
            except JoseError:
                continue
            except (TypeError, ValueError):
                # joserfc walks `crit` before checking its type: `"crit": null` or `[{}]` in
                # an unsigned header raised TypeError, a 500 for anyone holding a pk_.
                break
        if decoded is None:
            raise InvalidUserToken(
                "The user token is malformed or not signed with this environment's signing key"
            )
        registry = jwt.JWTClaimsRegistry(
            leeway=_CLOCK_SKEW_SECONDS,
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise InvalidUserToken("The user token has expired") from None
        except JoseError as exc:
            raise InvalidUserToken(f"The user token is invalid: {exc.error}") from None
        self._check_lifetime(decoded.claims)
        return decoded.claims

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A token signed to live for months is a standing credential if it leaks."""
        if not self._max_token_lifetime:
            return
        now = time.time()
        issued = claims.get("iat")
        start = min(float(issued), now) if isinstance(issued, int | float) else now
        if float(claims["exp"]) - start > self._max_token_lifetime + _CLOCK_SKEW_SECONDS:
            raise InvalidUserToken(
                f"The user token lives longer than {self._max_token_lifetime} seconds "
                "(GATEWAY_USER_TOKEN_MAX_LIFETIME_SECONDS); sign it with a nearer exp"
            )

    async def _api_key(self, key: str) -> ApiKeyMatch | None:
        now = time.monotonic()
        cached = self._api_keys.get(key)
        if cached and cached[0] > now:
            return cached[1]
        match = await self._credentials.find(key)
        if len(self._api_keys) > 10_000:
            self._api_keys.clear()
        self._api_keys[key] = (now + LOOKUP_TTL_SECONDS, match)
        return match

    async def _keys(self, environment_id: str) -> list[RSAKey]:
        now = time.monotonic()
        cached = self._signing_keys.get(environment_id)
        if cached and cached[0] > now:
            return cached[1]
        pems = await self._credentials.signing_public_pems(environment_id)
        keys = [RSAKey.import_key(pem) for pem in pems]
        self._signing_keys[environment_id] = (now + LOOKUP_TTL_SECONDS, keys)
        return keys


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
