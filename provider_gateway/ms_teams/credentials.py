"""App-only Graph tokens from msal, fetched off the event loop, once per (channel, tenant);
and the redemption of the admin's sign-in code that proves who consented.

msal is synchronous (requests underneath): every call runs in a small dedicated thread pool.
One ConfidentialClientApplication per (channel, tenant, secret): msal warns that
/common and /organizations are unreliable for client credentials, and a rotated secret must
not reuse a cache built with the old one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provider_gateway.config import Settings
from provider_gateway.coordination import KeyedLocks
from provider_gateway.crypto import KeyRing, UndecryptableError
from provider_gateway.errors import UpstreamError, UpstreamTimeout
from provider_gateway.http_client import ssl_context
from provider_gateway.models import Channel
from provider_gateway.observe import UpstreamObserver, ignore
from provider_gateway.shared.state import SharedState

if TYPE_CHECKING:  # msal and requests load on the first token fetch, in the msal threads
    import msal
    import requests

log = logging.getLogger(__name__)
# Fetch a new token this long before the old one expires (msal itself treats < 5 min as expired).
TOKEN_LEEWAY_SECONDS = 300
_AADSTS = re.compile(r"AADSTS(\d+)")
# TokenRefused reasons of a code redemption that Entra answered, with no usable id token.
ID_TOKEN_REFUSALS = frozenset({"nonce_mismatch", "no_id_token"})


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def certificate_credential(pem: str) -> dict[str, str] | None:
    """msal's certificate credential from a PEM holding a private key and its certificate;
    None when `pem` is a plain client secret (a Graph secret never looks like PEM).

    Given the certificate, msal signs a PS256 assertion with its SHA-256 thumbprint.
    """
    if "-----BEGIN" not in pem:
        return None
    blocks = {match.group(1): match.group(0) for match in _PEM_BLOCK.finditer(pem)}
    key = next((block for label, block in blocks.items() if label.endswith("PRIVATE KEY")), None)
    certificate = blocks.get("CERTIFICATE")
    if key is None or certificate is None:
        raise ValueError("a client certificate PEM needs a private key and its certificate")
    private = serialization.load_pem_private_key(key.encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("Entra certificate credentials need an RSA key")
    public = x509.load_pem_x509_certificate(certificate.encode()).public_key()
    if _spki(private.public_key()) != _spki(public):
        raise ValueError("the private key does not belong to the certificate")
    return {"private_key": key, "public_certificate": certificate}


def _spki(key: Any) -> bytes:
    encoded: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


class TokenRefused(Exception):
    """Entra refused an app token for this tenant: e.g. AADSTS7000229 (never consented)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Token:
    access_token: str
    expires_at: float


@dataclass(frozen=True)
class SigninCode:
    """An authorization code from the admin's sign-in, and what it was requested with."""

    code: str
    redirect_uri: str
    nonce: str
    code_verifier: str


def _app_tokens_only() -> Any:
    """msal's cache, keeping app (client-credentials) tokens only: the admin's sign-in is a
    proof, read once; its id and access tokens are never kept."""
    import msal

    class AppTokensOnly(msal.TokenCache):  # type: ignore[misc]
        def add(self, event: dict[str, Any], now: float | None = None) -> None:
            if event.get("grant_type") == "client_credentials":
                super().add(event, now=now)

    return AppTokensOnly()


def _context_adapter(context: ssl.SSLContext) -> Any:
    """A requests adapter verifying with our SSL context: system roots plus GATEWAY_CA_BUNDLE."""
    from requests.adapters import HTTPAdapter

    class ContextAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

    return ContextAdapter()


def msal_http_client(settings: Settings) -> requests.Session:
    import requests

    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override `verify` (msal's too) unless
    trust_env is off; so it is off, and proxies are taken from the environment here."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(settings.ca_bundle) if settings.ca_bundle else True
    session.mount("https://", _context_adapter(ssl_context(settings)))
    # HTTPS_PROXY / NO_PROXY for the login host, as trust_env would have read them.
    proxies = requests.utils.get_environ_proxies(settings.ms_login_url)
    session.proxies = {k: v for k, v in proxies.items() if k in {"http", "https"}}
    return session


class GraphTokens:
    def __init__(
        self,
        settings: Settings,
        locks: KeyedLocks,
        executor: ThreadPoolExecutor,
        shared: SharedState,
        key_ring: KeyRing,
        clock: Callable[[], float] = time.time,
        observe: UpstreamObserver = ignore,
    ) -> None:
        self._login_url = settings.ms_login_url
        self._scope = f"{settings.ms_graph_url}/.default"
        self._timeout = settings.upstream_timeout_seconds
        self._settings = settings
        self._http: requests.Session | None = None  # made in an msal thread, on first use
        self._http_made = threading.Lock()
        self._locks = locks
        self._executor = executor
        self._clock = clock
        self._shared = shared
        self._key_ring = key_ring
        self._observe = observe
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._tokens: dict[str, _Token] = {}

    async def token(self, channel: Channel, tenant_id: str) -> str:
        """From this process, else from the other replicas (Redis), else from Entra: once."""
        key = _cache_key(channel, tenant_id)
        token = self._fresh(self._tokens.get(key)) or self._fresh(await self._from_shared(key))
        if token is not None:
            self._tokens[key] = token
            return token.access_token
        async with self._locks.hold(f"graph-token:{key}"):
            token = self._fresh(await self._from_shared(key))  # fetched while we waited?
            if token is None:
                reply = await self._in_thread(
                    "client_credentials token", self._acquire, channel, tenant_id, key
                )
                expires_at = self._clock() + int(reply.get("expires_in", 3599))
                token = _Token(reply["access_token"], expires_at)
                await self._to_shared(key, token)
            self._tokens[key] = token
            return token.access_token

    async def redeem_signin(
        self, channel: Channel, tenant_id: str, signin: SigninCode
    ) -> dict[str, Any]:
        """The id token claims of the admin's sign-in at `tenant_id` (msal checks the nonce);
        TokenRefused when Entra refuses the code."""
        key = _cache_key(channel, tenant_id)
        return await self._in_thread(
            "authorization_code token", self._redeem, channel, tenant_id, key, signin
        )

    async def forget(self, channel: Channel, tenant_id: str) -> None:
        key = _cache_key(channel, tenant_id)
        self._tokens.pop(key, None)
        self._apps.pop(key, None)
        await self._shared.set(_shared_key(key), b"", 1)

    def _fresh(self, token: _Token | None) -> _Token | None:
        if token and token.expires_at - TOKEN_LEEWAY_SECONDS > self._clock():
            return token
        return None

    async def _from_shared(self, key: str) -> _Token | None:
        sealed = await self._shared.get(_shared_key(key))
        if not sealed:
            return None
        try:
            access_token, expires_at = json.loads(self._key_ring.decrypt(sealed.decode()))
        except (UndecryptableError, ValueError, UnicodeDecodeError):
            return None  # written under a key we no longer hold, or garbage: fetch anew
        return _Token(str(access_token), float(expires_at))

    async def _to_shared(self, key: str, token: _Token) -> None:
        """Encrypted, like everything else the gateway keeps outside its process."""
        sealed = self._key_ring.encrypt(json.dumps([token.access_token, token.expires_at]).encode())
        ttl = token.expires_at - TOKEN_LEEWAY_SECONDS - self._clock()
        if ttl > 0:
            await self._shared.set(_shared_key(key), sealed.encode(), ttl)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    async def _in_thread(
        self, operation: str, function: Callable[..., dict[str, Any]], *args: Any
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        status = "200"
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except TokenRefused:
            status = "refused"
            raise
        except Exception as exc:
            import requests  # msal, which raised this, has loaded it

            if isinstance(exc, requests.Timeout):
                status = "timeout"
                raise UpstreamTimeout("Microsoft Entra did not answer in time") from None
            if isinstance(exc, (requests.RequestException, OSError)):
                status = "network_error"
                log.warning("entra token request failed: %s", type(exc).__name__)
                raise UpstreamError("Microsoft Entra could not be reached") from None
            raise
        finally:
            self._observe("entra", operation, status, time.perf_counter() - started)

    def _app(
        self, channel: Channel, tenant_id: str, key: str
    ) -> msal.ConfidentialClientApplication:
        """Runs in the msal thread pool: msal discovers the tenant's endpoints on creation."""
        import msal

        with self._http_made:  # several msal threads may get here first at once
            if self._http is None:
                self._http = msal_http_client(self._settings)
        app = self._apps.get(key)
        if app is None:
            try:
                secret = channel.client_secret.reveal()
                app = msal.ConfidentialClientApplication(
                    channel.client_id,
                    client_credential=certificate_credential(secret) or secret,
                    authority=f"{self._login_url}/{tenant_id}",
                    http_client=self._http,
                    timeout=self._timeout,
                    instance_discovery=False,  # the authority is the operator's MS_LOGIN_URL
                    token_cache=_app_tokens_only(),
                    exclude_scopes=["offline_access"],  # no refresh token for the sign-in
                )
            except ValueError:
                # msal's tenant discovery got a 4xx: no such tenant at this authority.
                raise TokenRefused("invalid_tenant") from None
            self._apps[key] = app
        return app

    def _acquire(self, channel: Channel, tenant_id: str, key: str) -> dict[str, Any]:
        """Runs in the msal thread pool."""
        app = self._app(channel, tenant_id, key)
        reply: dict[str, Any] = app.acquire_token_for_client(scopes=[self._scope])
        if "access_token" not in reply:
            raise TokenRefused(_reason(reply))
        return reply

    def _redeem(
        self, channel: Channel, tenant_id: str, key: str, signin: SigninCode
    ) -> dict[str, Any]:
        """Runs in the msal thread pool. The scope is msal's reserved OpenID ones only."""
        app = self._app(channel, tenant_id, key)
        try:
            reply: dict[str, Any] = app.acquire_token_by_authorization_code(
                signin.code,
                scopes=[],
                redirect_uri=signin.redirect_uri,
                nonce=signin.nonce,
                data={"code_verifier": signin.code_verifier},  # PKCE (RFC 7636)
            )
        except ValueError:
            raise TokenRefused("nonce_mismatch") from None  # msal compared the id token's
        claims = reply.get("id_token_claims")
        if not isinstance(claims, dict):
            raise TokenRefused(_reason(reply) if "error" in reply else "no_id_token")
        return claims


def _shared_key(key: str) -> str:
    return "graph-token:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _cache_key(channel: Channel, tenant_id: str) -> str:
    secret = hashlib.sha256(channel.client_secret.reveal().encode()).hexdigest()[:16]
    return f"{channel.id}:{tenant_id}:{channel.client_id}:{secret}"


def _reason(reply: dict[str, Any]) -> str:
    codes = reply.get("error_codes") or []
    if codes:
        return f"AADSTS{codes[0]}"
    match = _AADSTS.search(str(reply.get("error_description", "")))
    if match:
        return f"AADSTS{match.group(1)}"
    return str(reply.get("error") or "token_refused")
