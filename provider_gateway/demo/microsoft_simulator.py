"""A simulated Microsoft: the admin-consent screen, the admin's sign-in, Entra's token
endpoint and Graph's teams.

Two apps: `consent_app` is what a browser opens (plain HTTP, so no certificate warning): the
consent screen and the OpenID Connect sign-in, where the demo's admin is always signed in;
`api_app` plays login.microsoftonline.com and graph.microsoft.com over TLS for msal and the
gateway. Tokens are only issued for a tenant after its admin consented, as Entra does, and are
JWTs whose `roles` hold the application permissions consented (what auth_check reads).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey
from yarl import URL

from provider_gateway.demo.consent import ALLOW, ENTRA_DECLINED, consent_screen, refusal_screen
from provider_gateway.demo.entra_signin import EntraSignin, SigninRefusal, authorize_problem

PROVIDER = "Microsoft simulator, provider-gateway demo"
TENANT_ID = "7d3c1e58-5a4f-4c1b-9a53-0d1e2f3a4b5c"
TENANT_NAME = "Contoso (demo)"
TOKEN_LIFETIME = 3599
# The application permissions the consent screen lists, so the ones app tokens carry.
ROLES = ("Team.ReadBasic.All", "Channel.ReadBasic.All")
_TEAMS: dict[str, tuple[str, list[str]]] = {
    # team id: (name, channel names)
    "2f0a5c1e-0001-4a4a-8b8b-000000000001": ("Engineering", ["General", "Deploys", "On-call"]),
    "2f0a5c1e-0002-4a4a-8b8b-000000000002": ("Support", ["General", "Escalations", "VIP"]),
    "2f0a5c1e-0003-4a4a-8b8b-000000000003": ("Leadership", ["General", "Board"]),
}
_PAGE_SIZE = 2  # small, so the teams list shows @odata.nextLink paging even with 3 teams


@dataclass
class MicrosoftSimulator:
    client_id: str
    client_secret: str
    redirect_url: str
    api_url: str = ""  # https://127.0.0.1:<port>, known once the TLS site is bound
    _consented: set[str] = field(default_factory=set)  # tenants
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    _signin: EntraSignin = field(default_factory=EntraSignin)
    _signing_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048))

    def consent_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/organizations/adminconsent", self._consent_screen)
        app.router.add_post("/organizations/adminconsent", self._decide)
        app.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._sign_in)
        return app

    def api_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/v1.0/teams", self._teams)
        app.router.add_get("/v1.0/teams/{team_id}/channels", self._channels)
        return app

    # ---- the browser's side ------------------------------------------------------------------
    async def _consent_screen(self, request: web.Request) -> web.Response:
        if request.query.get("client_id") != self.client_id:
            return refusal_screen(provider=PROVIDER, error="AADSTS700016: Application not found")
        if request.query.get("redirect_uri") != self.redirect_url:
            return refusal_screen(provider=PROVIDER, error="AADSTS50011: Redirect URI mismatch")
        return consent_screen(
            provider=PROVIDER,
            allow_label="Accept",
            heading=f"Permissions requested for {TENANT_NAME}: Provider Gateway Demo",
            details=[
                "Read the names and descriptions of all teams (Team.ReadBasic.All)",
                "Read the names and descriptions of all channels (Channel.ReadBasic.All)",
                "Consent on behalf of your organization",
            ],
            fields={"state": request.query.get("state", "")},
        )

    async def _decide(self, request: web.Request) -> web.Response:
        form = await request.post()
        query = {"state": str(form.get("state", ""))}
        if form.get("decision") == ALLOW:
            self._consented.add(TENANT_ID)
            query |= {"admin_consent": "True", "tenant": TENANT_ID}
        else:
            query |= ENTRA_DECLINED
        raise web.HTTPFound(str(URL(self.redirect_url).with_query(query)))

    async def _sign_in(self, request: web.Request) -> web.Response:
        """The demo's admin (of TENANT_NAME) is signed in: a code at once, as Entra does for a
        browser with one session; another directory would need another account."""
        query = dict(request.query)
        if query.get("client_id") != self.client_id:
            return refusal_screen(provider=PROVIDER, error="AADSTS700016: Application not found")
        if query.get("redirect_uri") != self.redirect_url:
            return refusal_screen(provider=PROVIDER, error="AADSTS50011: Redirect URI mismatch")
        tenant = request.match_info["tenant"]
        if tenant != TENANT_ID:
            return refusal_screen(
                provider=PROVIDER,
                error=f"AADSTS50020: The signed-in account does not exist in tenant {tenant}.",
            )
        problem = authorize_problem(query)
        outcome = (
            {"error": problem}
            if problem
            else {"code": self._signin.issue_code(query, tenant=tenant, tid=TENANT_ID)}
        )
        outcome["state"] = query.get("state", "")
        raise web.HTTPFound(str(URL(self.redirect_url).with_query(outcome)))

    # ---- Entra ---------------------------------------------------------------------------------
    async def _discovery(self, request: web.Request) -> web.Response:
        base = f"{self.api_url}/{request.match_info['tenant']}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _entra_error("invalid_client", "AADSTS7000215: Invalid client secret.", 401)
        if form.get("grant_type") == "authorization_code":
            reply = self._signin.redeem(
                {k: str(v) for k, v in form.items()},
                tenant=request.match_info["tenant"],
                issuer_base=self.api_url,
            )
            if isinstance(reply, SigninRefusal):
                description = f"AADSTS{reply.code}: {reply.description}"
                return _entra_error(reply.error, description, reply.status)
            return web.json_response(reply)
        if request.match_info["tenant"] not in self._consented:
            return _entra_error(
                "invalid_client",
                f"AADSTS7000229: The client application {self.client_id} is missing service "
                "principal in the tenant.",
                401,
            )
        token = self._app_token(request.match_info["tenant"])
        self._tokens[token] = time.time() + TOKEN_LIFETIME
        return web.json_response(
            {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "access_token": token}
        )

    def _app_token(self, tenant: str) -> str:
        now = int(time.time())
        claims = {
            "aud": self.api_url,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "appid": self.client_id,
            "tid": tenant,
            "roles": list(ROLES),
            "uti": secrets.token_hex(8),
        }
        return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, self._signing_key)

    # ---- Graph -------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self._tokens.get(token, 0.0) > time.time()

    async def _teams(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is invalid.")
        teams = [
            {"id": team_id, "displayName": name, "description": f"The {name} team"}
            for team_id, (name, _) in _TEAMS.items()
        ]
        try:
            top = int(request.query.get("$top", str(_PAGE_SIZE)))
            offset = int(request.query.get("$skiptoken", "0"))
        except ValueError:
            return _graph_error(400, "BadRequest", "Invalid paging parameter.")
        end = offset + min(top, _PAGE_SIZE)
        body: dict[str, Any] = {
            "@odata.context": f"{self.api_url}/v1.0/$metadata#teams",
            "value": [_selected(team, request.query.get("$select")) for team in teams[offset:end]],
        }
        if end < len(teams):
            kept = "".join(
                f"{quote(name)}={quote(value, safe='')}&"
                for name, value in request.query.items()
                if name != "$skiptoken"
            )
            body["@odata.nextLink"] = f"{self.api_url}/v1.0/teams?{kept}$skiptoken={end}"
        return web.json_response(body)

    async def _channels(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is invalid.")
        team_id = request.match_info["team_id"]
        if team_id not in _TEAMS:
            return _graph_error(404, "NotFound", f"No team found with Group Id {team_id}")
        channels = [
            {
                "id": f"19:{team_id[-4:]}{number}@thread.tacv2",
                "displayName": name,
                "description": None,
                "membershipType": "standard",
                "isArchived": False,
            }
            for number, name in enumerate(_TEAMS[team_id][1])
        ]
        return web.json_response(
            {"value": [_selected(channel, request.query.get("$select")) for channel in channels]}
        )


def _selected(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return item
    fields = {part.strip() for part in select.split(",")}
    return {key: value for key, value in item.items() if key in fields}


def _entra_error(error: str, description: str, status: int) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _graph_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
