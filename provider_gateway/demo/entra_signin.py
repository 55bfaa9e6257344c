"""Entra's OpenID Connect sign-in, simulated: one-time codes and the id tokens they redeem for.

Shared by the demo's Microsoft simulator and the test suite's fake Entra (like the consent
screens). What Entra does, as far as a relying party can see it: `GET
{tenant}/oauth2/v2.0/authorize` issues a code bound to the client, the tenant, the
redirect URI, the nonce and the PKCE challenge; the token endpoint's authorization_code grant
redeems it once, within ten minutes, with the same redirect URI and the PKCE verifier, for an
id token (a signed v2.0 JWT with `tid`, `aud`, `iss`, `nonce`, `oid`, …) and an access token.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_LIFETIME_SECONDS = 600
ID_TOKEN_LIFETIME_SECONDS = 3600
SIGNING_KEY_ID = "simulated-entra-1"


@dataclass(frozen=True)
class SigninRefusal:
    """How Entra's token endpoint says no: `error`, an AADSTS number, a description."""

    error: str
    code: int
    description: str
    status: int = 400


@dataclass(frozen=True)
class _Code:
    client_id: str
    tenant: str  # the authority it was issued at
    tid: str  # the directory of the user who signed in
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    expires_at: float


def authorize_problem(query: Mapping[str, str]) -> str | None:
    """The OAuth error Entra redirects with for a malformed sign-in request, or None."""
    if query.get("response_type") != "code":
        return "unsupported_response_type"
    if "openid" not in query.get("scope", "").split():
        return "invalid_scope"
    if query.get("code_challenge") and query.get("code_challenge_method") != "S256":
        return "invalid_request"
    return None


@dataclass
class EntraSignin:
    """Issues and redeems sign-in codes; `issued` keeps what each code was bound to."""

    _codes: dict[str, _Code] = field(default_factory=dict)

    def issue_code(self, query: Mapping[str, str], *, tenant: str, tid: str) -> str:
        """A code for `query` (an authorize request already checked) at `tenant`, for a user
        of directory `tid`."""
        code = "0.A" + secrets.token_urlsafe(48)
        self._codes[code] = _Code(
            client_id=query["client_id"],
            tenant=tenant,
            tid=tid,
            redirect_uri=query["redirect_uri"],
            nonce=query.get("nonce"),
            challenge=query.get("code_challenge"),
            expires_at=time.time() + CODE_LIFETIME_SECONDS,
        )
        return code

    def redeem(
        self,
        form: Mapping[str, str],
        *,
        tenant: str,
        issuer_base: str,
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | SigninRefusal:
        """The token reply for an authorization_code grant whose client is authenticated;
        `claims` overrides id token claims (tests)."""
        issued = self._codes.pop(form.get("code", ""), None)
        if issued is None:
            return SigninRefusal(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed or is not valid.",
            )
        if issued.expires_at < time.time():
            return SigninRefusal(
                "invalid_grant", 70008, "The provided authorization code has expired."
            )
        if issued.client_id != form.get("client_id") or issued.tenant != tenant:
            return SigninRefusal(
                "invalid_grant",
                70000,
                "The provided authorization code is not valid for this client or tenant.",
            )
        if issued.redirect_uri != form.get("redirect_uri"):
            return SigninRefusal(
                "invalid_grant",
                500112,
                "The reply address does not match the reply address "
                "provided when requesting the authorization code.",
            )
        if issued.challenge is not None and _challenge(form.get("code_verifier")) != (
            issued.challenge
        ):
            return SigninRefusal(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge "
                "supplied in the authorization request.",
            )
        return self._reply(issued, form, issuer_base, claims or {})

    def _reply(
        self,
        issued: _Code,
        form: Mapping[str, str],
        issuer_base: str,
        overrides: Mapping[str, Any],
    ) -> dict[str, Any]:
        now = int(time.time())
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"admin@{issued.tid}"))
        claims: dict[str, Any] = {
            "aud": issued.client_id,
            "iss": f"{issuer_base}/{issued.tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME_SECONDS,
            "name": "Directory Admin",
            "oid": oid,
            "preferred_username": f"admin@{issued.tid[:8]}.example",
            "sub": hashlib.sha256(f"{oid}:{issued.client_id}".encode()).hexdigest()[:43],
            "tid": issued.tid,
            "ver": "2.0",
        }
        if issued.nonce is not None:
            claims["nonce"] = issued.nonce
        claims.update(overrides)
        header = {"alg": "RS256", "typ": "JWT", "kid": SIGNING_KEY_ID}
        reply: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": "openid profile User.Read",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": "user-" + secrets.token_urlsafe(24),
            "id_token": jwt.encode(header, claims, signing_key()),
        }
        if form.get("client_info") == "1":
            info = json.dumps({"uid": oid, "utid": issued.tid}).encode()
            reply["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
        return reply


@functools.cache
def signing_key() -> RSAKey:
    """One key per process: generating RSA keys is slow, and nothing checks whose it is."""
    return RSAKey.generate_key(2048, parameters={"kid": SIGNING_KEY_ID})


def _challenge(verifier: str | None) -> str | None:
    if not verifier:
        return None
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
