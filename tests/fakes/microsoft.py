"""Fake Microsoft Entra (login) and Microsoft Graph: real aiohttp apps, served over TLS.

msal insists on https, so tests serve both with a trustme CA and point GATEWAY_CA_BUNDLE at
it. The login fake answers the OIDC discovery document msal fetches first and the v2.0
token endpoint (client credentials, refusing unconsented tenants the way Entra does; and the
authorization-code grant of the OpenID Connect sign-in, for an id token). Its app tokens are
JWTs whose `roles` claim holds the application permissions granted to that app in that tenant
(`grant_roles`; by default what Knock's Teams setup asks for). The Graph fake accepts only
tokens the login fake issued for that tenant, and refuses a call whose token lacks a role it
needs (403 "Missing role permissions on the request…"), as Graph does.

Browsers do not trust the test CA, so the pages a browser opens are also served by
`consent_app`, meant for plain HTTP on loopback: the admin-consent screen, whose Accept
button records the consent and redirects with `admin_consent=True&tenant=…` as Entra does,
and the sign-in (`/{tenant}/oauth2/v2.0/authorize`), which signs the admin in silently and
redirects back with a one-time code, as Entra does for a browser that has just consented.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, RSAKey
from joserfc.jws import JWSRegistry
from yarl import URL

from provider_gateway.demo.consent import ALLOW, ENTRA_DECLINED, consent_screen, refusal_screen
from provider_gateway.demo.entra_signin import EntraSignin, SigninRefusal, authorize_problem

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Knock's Teams setup grants these (among others); an app gets them unless a test says otherwise.
DEFAULT_ROLES = ("Team.ReadBasic.All", "Channel.ReadBasic.All")
# What Graph accepts for each listing (the permission tables of its reference pages).
TEAMS_ROLES = ("Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All")
CHANNELS_ROLES = (
    "Channel.ReadBasic.All",
    "ChannelSettings.Read.All",
    "ChannelSettings.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
)
_TOKEN_KEY = RSAKey.generate_key(2048)  # signs app tokens; nobody checks it but the fake


class _AssertionRegistry(JWSRegistry):
    max_header_length = 8192  # msal's header carries the certificate chain (x5c)


# PS256 is what msal signs with; joserfc only accepts it when named.
_ASSERTIONS = _AssertionRegistry(algorithms=["PS256", "RS256"], strict_check_header=False)


@dataclass
class GraphFailure:
    status: int = 503
    retry_after: int | None = None
    delay: float = 0.0


@dataclass
class GraphCall:
    path: str
    query: dict[str, str]
    raw_query: str
    token: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeMicrosoft:
    apps: dict[str, str] = field(default_factory=dict)  # client_id -> client_secret
    certificates: dict[str, str] = field(default_factory=dict)  # client_id -> certificate PEM
    consented: set[tuple[str, str]] = field(default_factory=set)  # (client_id, tenant)
    teams: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tenant -> teams
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # team -> channels
    token_requests: list[dict[str, str]] = field(default_factory=list)
    discovery_requests: list[str] = field(default_factory=list)
    graph_calls: list[GraphCall] = field(default_factory=list)
    graph_paths: list[str] = field(default_factory=list)  # every path Graph was asked for
    redirect_uris: dict[str, set[str]] = field(default_factory=dict)  # client_id -> registered
    consent_requests: list[dict[str, str]] = field(default_factory=list)  # consent page queries
    consent_tenant: str = "11111111-2222-4333-8444-555555555555"  # the admin's directory
    signin_requests: list[dict[str, str]] = field(default_factory=list)  # authorize queries
    signin_error: dict[str, str] | None = None  # the sign-in answers this error instead
    signin_tenant: str | None = None  # the signed-in user's directory (None: the path's)
    id_token_claims: dict[str, Any] = field(default_factory=dict)  # overrides, on redemption
    signin: EntraSignin = field(default_factory=EntraSignin)
    token_delay: float = 0.0
    token_lifetime: int = 3599
    roles: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (app, tenant)
    login_url: str = ""
    graph_url: str = ""
    _issued: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (tenant, exp)
    _graph_failures: list[GraphFailure] = field(default_factory=list)
    # Graph's Teams limit (30 requests/s per app per tenant): None, not enforced; else 429
    # with Retry-After beyond that many calls in any second, recorded in `graph_throttled`.
    graph_per_second: int | None = None
    graph_throttled: list[GraphCall] = field(default_factory=list)
    _graph_windows: dict[str, deque[float]] = field(default_factory=dict)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.login_app = web.Application()
        self.login_app.router.add_get(
            "/{tenant}/v2.0/.well-known/openid-configuration", self._discovery
        )
        self.login_app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        self.login_app.router.add_get("/{tenant}/adminconsent", self._admin_consent)
        self.login_app.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._authorize)
        self.consent_app = web.Application()
        self.consent_app.router.add_get("/{tenant}/adminconsent", self._consent_page)
        self.consent_app.router.add_post("/{tenant}/adminconsent", self._consent_decision)
        self.consent_app.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._authorize)
        self.graph_app = web.Application(middlewares=[self._record_path])
        self.graph_app.router.add_get("/v1.0/teams", self._list_teams)
        self.graph_app.router.add_get("/v1.0/teams/{team_id}/channels", self._list_channels)

    # ---- test controls -------------------------------------------------------------------
    def register_app(
        self, client_id: str, client_secret: str, *, redirect_uris: tuple[str, ...] = ()
    ) -> None:
        """`redirect_uris`: the app registration's Web redirect URIs, checked at consent."""
        self.apps[client_id] = client_secret
        if redirect_uris:
            self.redirect_uris[client_id] = set(redirect_uris)

    def register_certificate(self, client_id: str, certificate_pem: str) -> None:
        self.certificates[client_id] = certificate_pem

    def consent(self, client_id: str, tenant: str) -> None:
        self.consented.add((client_id, tenant))

    def grant_roles(self, client_id: str, tenant: str, *roles: str) -> None:
        """The application permissions consented for this app in this tenant (its new tokens'
        `roles`); tokens already issued keep the roles they were issued with, as Entra's do."""
        self.roles[(client_id, tenant)] = roles

    def add_teams(self, tenant: str, count: int) -> None:
        self.teams[tenant] = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "displayName": f"Team {i:04d}",
                "description": f"The {i}th team" if i % 3 else None,
                "visibility": "public",
                "createdDateTime": "2026-01-01T00:00:00Z",
            }
            for i in range(count)
        ]

    def add_channels(self, team_id: str, count: int) -> None:
        self.channels[team_id] = [
            {
                "id": f"19:channel{i}@thread.tacv2",
                "displayName": "General" if i == 0 else f"Channel {i}",
                "description": None,
                "createdDateTime": "2026-01-02T00:00:00Z",
                "isArchived": i % 5 == 4,
                "membershipType": "private" if i % 4 == 3 else "standard",
                "email": "",
            }
            for i in range(count)
        ]

    def fail_graph(self, *failures: GraphFailure) -> None:
        self._graph_failures.extend(failures)

    def expire_tokens(self) -> None:
        self._issued = {token: (tenant, 0.0) for token, (tenant, _) in self._issued.items()}

    def graph_calls_to(self, path: str) -> list[GraphCall]:
        return [call for call in self.graph_calls if call.path == path]

    # ---- Entra -------------------------------------------------------------------------------
    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        self.discovery_requests.append(tenant)
        base = f"{self.login_url}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append({"tenant": tenant, **form})
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        client_id = form.get("client_id", "")
        if form.get("grant_type") == "authorization_code":
            return self._redeem_code(request, tenant, client_id, form)
        if form.get("grant_type") != "client_credentials":
            return _entra_error("unsupported_grant_type", 70003, "Unsupported grant type")
        if client_id not in self.apps and client_id not in self.certificates:
            return _unknown_application(client_id, tenant)
        if "client_assertion" in form:
            refusal = self._check_assertion(request, tenant, client_id, form)
            if refusal is not None:
                return refusal
        elif self.apps.get(client_id) != form.get("client_secret"):
            return _entra_error("invalid_client", 7000215, "Invalid client secret provided.", 401)
        if form.get("scope") != f"{self.graph_url}/.default":
            return _entra_error(
                "invalid_scope", 1002012, "The provided value for scope is not valid."
            )
        if (client_id, tenant) not in self.consented:
            return _entra_error(
                "invalid_client",
                7000229,
                f"The client application {client_id} is missing service principal in the "
                f"tenant {tenant}.",
                401,
            )
        token = self._app_token(client_id, tenant)
        self._issued[token] = (tenant, time.time() + self.token_lifetime)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )

    def _redeem_code(
        self, request: web.Request, tenant: str, client_id: str, form: dict[str, str]
    ) -> web.Response:
        """The sign-in's authorization-code grant: the client authenticates as for client
        credentials (secret or certificate assertion), then the code is redeemed once."""
        if "client_assertion" in form:
            refusal = self._check_assertion(request, tenant, client_id, form)
            if refusal is not None:
                return refusal
        elif self.apps.get(client_id) != form.get("client_secret"):
            return _entra_error("invalid_client", 7000215, "Invalid client secret provided.", 401)
        reply = self.signin.redeem(
            form, tenant=tenant, issuer_base=self.login_url, claims=self.id_token_claims
        )
        if isinstance(reply, SigninRefusal):
            return _entra_error(reply.error, reply.code, reply.description, reply.status)
        return web.json_response(reply)

    def _app_token(self, client_id: str, tenant: str) -> str:
        """An app-only access token shaped like Entra's: an RS256 JWT with `roles`."""
        now = int(time.time())
        claims = {
            "aud": self.graph_url,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": client_id,
            "tid": tenant,
            "idtyp": "app",
            "roles": list(self.roles.get((client_id, tenant), DEFAULT_ROLES)),
            "uti": f"fake-{next(self._serial)}",
        }
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": "fake"}, claims, _TOKEN_KEY)

    def _check_assertion(
        self, request: web.Request, tenant: str, client_id: str, form: dict[str, str]
    ) -> web.Response | None:
        """Verify a certificate credential as Entra does: signature, thumbprint, aud, iss/sub."""
        certificate_pem = self.certificates.get(client_id)
        if certificate_pem is None or form.get("client_assertion_type") != ASSERTION_TYPE:
            return _entra_error(
                "invalid_client", 700027, "Client assertion failed signature validation.", 401
            )
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        try:
            header = json.loads(
                base64.urlsafe_b64decode(form["client_assertion"].split(".")[0] + "==")
            )
            key = JWKRegistry.import_key(
                certificate.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                "RSA",
            )
            token = jwt.decode(
                form["client_assertion"], key, algorithms=["PS256", "RS256"], registry=_ASSERTIONS
            )
        except (JoseError, ValueError, KeyError):
            return _entra_error(
                "invalid_client", 700027, "Client assertion failed signature validation.", 401
            )
        thumbprint = (
            base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).rstrip(b"=").decode()
        )
        claims = token.claims
        if (
            str(header.get("x5t#S256", "")).rstrip("=")
            != thumbprint  # msal pads; Entra accepts both
            or claims.get("aud") != f"{self.login_url}/{tenant}/oauth2/v2.0/token"
            or claims.get("iss") != client_id
            or claims.get("sub") != client_id
            or int(claims.get("exp", 0)) < time.time()
        ):
            return _entra_error("invalid_client", 700027, "Client assertion is not valid.", 401)
        return None

    async def _admin_consent(self, request: web.Request) -> web.Response:
        """What the v1 admin-consent page does once an admin accepts (for browser tests)."""
        tenant = request.query.get("tenant_hint") or "11111111-2222-4333-8444-555555555555"
        self.consent(request.query["client_id"], tenant)
        location = (
            f"{request.query['redirect_uri']}?admin_consent=True&tenant={tenant}"
            f"&state={quote(request.query.get('state', ''))}"
        )
        raise web.HTTPFound(location)

    async def _consent_page(self, request: web.Request) -> web.Response:
        """The v1 admin-consent screen: which app asks for which tenant-wide permissions; Accept."""
        query = dict(request.query)
        self.consent_requests.append(query)
        refusal = self._consent_refusal(query)
        if refusal is not None:
            return refusal_screen(provider="Microsoft (fake)", error=refusal)
        return consent_screen(
            provider="Microsoft (fake)",
            heading=f"App {query['client_id']} wants these permissions for every user of "
            f"organization {self.consent_tenant}",
            details=["Team.ReadBasic.All", "Channel.ReadBasic.All"],
            fields=query,
            allow_label="Accept",
        )

    async def _consent_decision(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        refusal = self._consent_refusal(form)
        if refusal is not None:
            return refusal_screen(provider="Microsoft (fake)", error=refusal)
        if form.get("decision") == ALLOW:
            self.consent(form["client_id"], self.consent_tenant)
            outcome = {"admin_consent": "True", "tenant": self.consent_tenant}
        else:
            outcome = dict(ENTRA_DECLINED)
        if "state" in form:
            outcome["state"] = form["state"]
        raise web.HTTPFound(str(URL(form["redirect_uri"]).update_query(outcome)))

    async def _authorize(self, request: web.Request) -> web.Response:
        """The OpenID Connect sign-in: the browser's admin is signed in already, so Entra
        answers at once with a code (or the error a test asked for)."""
        tenant = request.match_info["tenant"]
        query = dict(request.query)
        self.signin_requests.append({"tenant": tenant, **query})
        refusal = self._consent_refusal(query)  # unknown app or unregistered redirect URI
        if refusal is not None:
            return refusal_screen(provider="Microsoft (fake)", error=refusal)
        problem = authorize_problem(query)
        if problem is not None:
            outcome = {"error": problem, "error_description": f"AADSTS90000: {problem}"}
        elif self.signin_error is not None:
            outcome = dict(self.signin_error)
        else:
            tid = self.signin_tenant or tenant
            outcome = {"code": self.signin.issue_code(query, tenant=tenant, tid=tid)}
        if "state" in query:
            outcome["state"] = query["state"]
        raise web.HTTPFound(str(URL(query["redirect_uri"]).update_query(outcome)))

    def _consent_refusal(self, params: dict[str, str]) -> str | None:
        client_id = params.get("client_id", "")
        if client_id not in self.apps:
            return f"AADSTS700016: Application with identifier '{client_id}' was not found."
        registered = self.redirect_uris.get(client_id)
        if not params.get("redirect_uri") or (
            registered is not None and params["redirect_uri"] not in registered
        ):
            return "AADSTS50011: The redirect URI specified in the request does not match."
        return None

    # ---- Graph -------------------------------------------------------------------------------
    @web.middleware
    async def _record_path(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.graph_paths.append(request.raw_path.partition("?")[0])
        response: web.StreamResponse = await handler(request)
        return response

    async def _graph_guard(
        self, request: web.Request, accepted: tuple[str, ...]
    ) -> tuple[str | None, web.Response | None]:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        self.graph_calls.append(
            GraphCall(request.path, dict(request.query), request.raw_path.partition("?")[2], token)
        )
        if self._graph_failures:
            failure = self._graph_failures.pop(0)
            if failure.delay:
                await asyncio.sleep(failure.delay)
            if failure.status != 200:
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                return None, web.json_response(
                    {"error": {"code": "TooManyRequests", "message": "Throttled"}},
                    status=failure.status,
                    headers=headers,
                )
        issued = self._issued.get(token or "")
        if issued is None or issued[1] < time.time():
            return None, _graph_error(
                401, "InvalidAuthenticationToken", "Access token is empty or invalid."
            )
        if self._over_graph_limit(issued[0]):
            self.graph_throttled.append(self.graph_calls[-1])
            return None, web.json_response(
                {"error": {"code": "TooManyRequests", "message": "Throttled"}},
                status=429,
                headers={"Retry-After": "1"},
            )
        roles = jwt.decode(token or "", _TOKEN_KEY).claims.get("roles", [])
        if not set(roles) & set(accepted):
            return None, _graph_error(
                403,
                "Forbidden",
                f"Missing role permissions on the request. API requires one of "
                f"'{', '.join(accepted)}'. Roles on the request '{', '.join(roles)}'.",
            )
        return issued[0], None

    def _over_graph_limit(self, tenant: str) -> bool:
        if self.graph_per_second is None:
            return False
        window = self._graph_windows.setdefault(tenant, deque())
        now = time.monotonic()
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.graph_per_second:
            return True
        window.append(now)
        return False

    async def _list_teams(self, request: web.Request) -> web.Response:
        tenant, refusal = await self._graph_guard(request, TEAMS_ROLES)
        if refusal is not None:
            return refusal
        teams = _filtered(self.teams.get(tenant or "", []), request.query.get("$filter"))
        top = int(request.query.get("$top", "100"))
        offset = _decode_skiptoken(request.query.get("$skiptoken"))
        page = teams[offset : offset + top]
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/v1.0/$metadata#teams",
            "value": [_selected(team, request.query.get("$select")) for team in page],
        }
        if offset + top < len(teams):
            kept = [
                f"{quote(key)}={quote(value, safe='')}"
                for key, value in request.query.items()
                if key != "$skiptoken"
            ]
            token = quote(_encode_skiptoken(offset + top), safe="")
            body["@odata.nextLink"] = (
                f"{self.graph_url}/v1.0/teams?{'&'.join([*kept, f'$skiptoken={token}'])}"
            )
        return web.json_response(body)

    async def _list_channels(self, request: web.Request) -> web.Response:
        _, refusal = await self._graph_guard(request, CHANNELS_ROLES)
        if refusal is not None:
            return refusal
        team_id = request.match_info["team_id"]
        if team_id not in self.channels:
            return _graph_error(404, "NotFound", "No team found with Group Id " + team_id)
        channels = _filtered(self.channels[team_id], request.query.get("$filter"))
        return web.json_response(
            {
                "@odata.context": f"{self.graph_url}/v1.0/$metadata#teams('{team_id}')/channels",
                "value": [_selected(channel, request.query.get("$select")) for channel in channels],
            }
        )


# An opaque token with characters that break naive handling: +, /, = and a quote.
def _encode_skiptoken(offset: int) -> str:
    return "RFNwdA+/" + base64.b64encode(f"offset'{offset}".encode()).decode()


def _decode_skiptoken(token: str | None) -> int:
    if not token:
        return 0
    if not token.startswith("RFNwdA+/"):
        raise web.HTTPBadRequest(
            text='{"error": {"code": "BadRequest", "message": "bad skiptoken"}}'
        )
    return int(base64.b64decode(token[8:]).decode().split("'")[1])


def _filtered(items: list[dict[str, Any]], odata_filter: str | None) -> list[dict[str, Any]]:
    """Enough of OData for tests: `displayName eq 'X'` and `startswith(displayName,'X')`."""
    if not odata_filter:
        return items
    if odata_filter.startswith("displayName eq '"):
        wanted = odata_filter[len("displayName eq '") : -1].replace("''", "'")
        return [item for item in items if item["displayName"] == wanted]
    if odata_filter.startswith("startswith(displayName,'"):
        prefix = odata_filter[len("startswith(displayName,'") : -2]
        return [item for item in items if item["displayName"].startswith(prefix)]
    raise web.HTTPBadRequest(
        text='{"error": {"code": "BadRequest", "message": "Invalid filter clause"}}',
        content_type="application/json",
    )


def _selected(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return item
    fields = [part.strip() for part in select.split(",")]
    return {key: value for key, value in item.items() if key in fields}


def _entra_error(error: str, code: int, description: str, status: int = 400) -> web.Response:
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: 0 Correlation ID: 0",
            "error_codes": [code],
            "timestamp": "2026-11-23 00:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        },
        status=status,
    )


def _graph_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _unknown_application(client_id: str, tenant: str) -> web.Response:
    """Entra's answer for a client id no app registration has (a mistyped --client-id)."""
    return _entra_error(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
    )
