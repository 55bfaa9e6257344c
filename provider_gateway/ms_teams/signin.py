"""The OpenID Connect sign-in that proves which directory an admin consented for.

Entra's consent redirect names a `tenant` the browser can forge. So the popup is sent once
more through `{login}/{tenant}/oauth2/v2.0/authorize` (an admin who just consented is signed
in: one silent hop), and the tenant is stored only when the id token that sign-in yields has
`tid` = that tenant. Between the two hops the flow lives in a pending record in shared state,
sealed with the key ring (it holds the tenant id and TeamsKit's state), under a random state
of ours, usable once and for ten minutes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from yarl import URL

from provider_gateway.crypto import KeyRing, UndecryptableError
from provider_gateway.install import InstallFailed
from provider_gateway.ms_teams.models import tenant_guid
from provider_gateway.shared.state import SharedState

SIGNIN_TTL_SECONDS = 600
CALLBACK_PATH = "/providers/ms-teams/authenticate"
# Our state is 32 random bytes, base64url: never the JSON object TeamsKit sends.
_SIGNIN_STATE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class PendingSignin:
    """What the second hop needs from the first."""

    teams_state: str  # TeamsKit's state as it arrived: who asked, for which tenant object
    tenant_id: str
    nonce: str
    code_verifier: str
    redirect_uri: str


def is_signin_state(raw: str | None) -> bool:
    return raw is not None and _SIGNIN_STATE.match(raw) is not None


class PendingSignins:
    """Pending sign-ins in shared state (Redis across replicas, else in-process), each taken
    once. Key names hold a digest of our state, values only ciphertext."""

    def __init__(
        self, shared: SharedState, key_ring: KeyRing, ttl_seconds: float = SIGNIN_TTL_SECONDS
    ) -> None:
        self._shared = shared
        self._key_ring = key_ring
        self._ttl = ttl_seconds

    async def start(self, pending: PendingSignin) -> str:
        """Keep `pending`; returns the state that finds it again."""
        state = secrets.token_urlsafe(32)
        sealed = self._key_ring.encrypt(json.dumps(asdict(pending)).encode())
        await self._shared.set(_record_key(state), sealed.encode(), self._ttl)
        return state

    async def take(self, state: str) -> PendingSignin | None:
        """The pending sign-in for `state`, once; None when unknown, expired or taken."""
        if not is_signin_state(state):
            return None
        key = _record_key(state)
        sealed = await self._shared.get(key)
        if not sealed:
            return None
        # Two replicas may read the record at once: the set-if-absent decides who takes it.
        if not await self._shared.add(key + ":taken", b"1", self._ttl):
            return None
        await self._shared.delete_if(key, sealed)
        try:
            fields = json.loads(self._key_ring.decrypt(sealed.decode()))
            return PendingSignin(**fields)
        except (UndecryptableError, ValueError, TypeError, UnicodeDecodeError):
            return None


def _record_key(state: str) -> str:
    return "teams-signin:" + hashlib.sha256(state.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636): the code is useless to whoever lacks the verifier we keep."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(login_url: str, client_id: str, pending: PendingSignin, state: str) -> str:
    """Entra's OpenID Connect sign-in at the consenting tenant, answered to our callback.

    No `prompt`: Entra signs in silently when the browser has one session (the admin's, who
    just consented) and shows its account picker or sign-in page otherwise, rather than
    failing as `prompt=none` would. No `login_hint`/`domain_hint`: we know neither, and the
    tenant is already in the path.
    """
    query = {
        "client_id": client_id,
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": pending.redirect_uri,
        "response_mode": "query",
        "state": state,
        "nonce": pending.nonce,
        "code_challenge": code_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
    }
    return str(URL(f"{login_url}/{pending.tenant_id}/oauth2/v2.0/authorize").with_query(query))


def check_id_token(
    claims: Mapping[str, Any], *, pending: PendingSignin, client_id: str, now: float | None = None
) -> None:
    """The sign-in proves the consent only if its id token is for us, from this sign-in, and
    for the directory the consent named. (msal ≥ 1.38 validates nothing but the nonce.)"""
    moment = time.time() if now is None else now
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    expires = claims.get("exp")
    if (
        claims.get("nonce") != pending.nonce
        or client_id not in audiences
        or not isinstance(expires, int | float)
        or expires + _CLOCK_SKEW_SECONDS < moment
    ):
        raise InstallFailed("invalid_id_token")
    tid = claims.get("tid")
    if tenant_guid(tid if isinstance(tid, str) else None) != pending.tenant_id:
        raise InstallFailed("tenant_mismatch")
    # Entra's v2.0 issuer is {login host}/{tid}/v2.0; the host differs per cloud.
    if not str(claims.get("iss", "")).endswith(f"/{pending.tenant_id}/v2.0"):
        raise InstallFailed("invalid_id_token")
