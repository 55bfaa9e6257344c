"""A simulated Slack: the authorize screen and the four Web API methods the gateway calls.

One workspace with a handful of channels. It answers like Slack does (HTTP 200 with
`{"ok": false, "error": ...}` for every API error, opaque cursors, Basic auth on
oauth.v2.access) so the demo exercises the gateway's real Slack code, not a shortcut.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from yarl import URL

from provider_gateway.demo.consent import ALLOW, consent_screen, refusal_screen

PROVIDER = "Slack simulator, provider-gateway demo"
TEAM_ID = "T0DEMO0001"
TEAM_NAME = "Acme Corp (demo)"
SCOPES = "channels:read,chat:write,chat:write.public,groups:read"
# name, private, archived
_CHANNELS = [
    ("general", False, False),
    ("random", False, False),
    ("alerts", False, False),
    ("deploys", False, False),
    ("customer-success", False, False),
    ("incidents", False, False),
    ("leadership", True, False),
    ("payments-oncall", True, False),
    ("launch-2025", False, True),
]


@dataclass
class SlackSimulator:
    client_id: str
    client_secret: str
    app_id: str
    redirect_url: str
    _codes: set[str] = field(default_factory=set)
    _tokens: dict[str, bool] = field(default_factory=dict)  # token -> revoked

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        app.router.add_post("/oauth/v2/authorize", self._decide)
        app.router.add_route("*", "/api/{method}", self._api)
        return app

    def channels(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f"C0DEMO{number:04d}",
                "name": name,
                "name_normalized": name,
                "is_channel": True,
                "is_group": False,
                "is_im": False,
                "is_mpim": False,
                "is_private": private,
                "is_archived": archived,
                "is_general": name == "general",
                "is_shared": False,
                "is_org_shared": False,
                "is_member": True,
                "context_team_id": TEAM_ID,
                "created": 1_700_000_000 + number * 86_400,
                "num_members": 3 + number * 2,
            }
            for number, (name, private, archived) in enumerate(_CHANNELS, start=1)
        ]

    # ---- the browser's side ------------------------------------------------------------------
    async def _authorize(self, request: web.Request) -> web.Response:
        if request.query.get("client_id") != self.client_id:
            return refusal_screen(provider=PROVIDER, error="invalid_client_id")
        return consent_screen(
            provider=PROVIDER,
            heading=f"Provider Gateway Demo is requesting permission to access {TEAM_NAME}",
            details=[f"Bot scopes: {request.query.get('scope') or SCOPES}"],
            fields={"state": request.query.get("state", "")},
        )

    async def _decide(self, request: web.Request) -> web.Response:
        form = await request.post()
        query: dict[str, str] = {"state": str(form.get("state", ""))}
        if form.get("decision") == ALLOW:
            code = secrets.token_urlsafe(24)
            self._codes.add(code)
            query["code"] = code
        else:
            query["error"] = "access_denied"
        raise web.HTTPFound(str(URL(self.redirect_url).with_query(query)))

    # ---- the Web API -------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        params = {**request.query, **{k: str(v) for k, v in (await request.post()).items()}}
        handlers = {
            "oauth.v2.access": self._oauth_v2_access,
            "auth.test": self._auth_test,
            "auth.revoke": self._auth_revoke,
            "conversations.list": self._conversations_list,
        }
        handler = handlers.get(request.match_info["method"])
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        authorization = request.headers.get("Authorization", "")
        # As Slack does for every call made with a token: the scopes it holds (auth_check
        # reads them to tell a customer which ones the channel listing would miss).
        known = authorization.removeprefix("Bearer ") in self._tokens
        headers = {"x-oauth-scopes": SCOPES} if known else {}
        return web.json_response(handler(authorization, params), headers=headers)

    def _oauth_v2_access(self, authorization: str, params: dict[str, str]) -> dict[str, Any]:
        if authorization != _basic(self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client"}
        if params.get("code") not in self._codes:
            return {"ok": False, "error": "invalid_code"}
        self._codes.discard(params["code"])
        token = "xoxb-demo-" + secrets.token_hex(16)
        self._tokens[token] = False
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": SCOPES,
            "bot_user_id": "U0DEMOBOT",
            "app_id": self.app_id,
            "team": {"id": TEAM_ID, "name": TEAM_NAME},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": "U0DEMOADMIN"},
        }

    def _token_error(self, authorization: str) -> str | None:
        token = authorization.removeprefix("Bearer ")
        if token not in self._tokens:
            return "invalid_auth"
        return "token_revoked" if self._tokens[token] else None

    def _auth_test(self, authorization: str, _params: dict[str, str]) -> dict[str, Any]:
        if error := self._token_error(authorization):
            return {"ok": False, "error": error}
        return {
            "ok": True,
            "url": "https://acme-demo.slack.com/",
            "team": TEAM_NAME,
            "user": "demo-bot",
            "team_id": TEAM_ID,
            "user_id": "U0DEMOBOT",
            "bot_id": "B0DEMOBOT",
            "is_enterprise_install": False,
        }

    def _auth_revoke(self, authorization: str, _params: dict[str, str]) -> dict[str, Any]:
        if error := self._token_error(authorization):
            return {"ok": False, "error": error}
        self._tokens[authorization.removeprefix("Bearer ")] = True
        return {"ok": True, "revoked": True}

    def _conversations_list(self, authorization: str, params: dict[str, str]) -> dict[str, Any]:
        if error := self._token_error(authorization):
            return {"ok": False, "error": error}
        types = set(params.get("types", "public_channel").split(","))
        excluded = params.get("exclude_archived", "false").lower() in {"true", "1"}
        matching = [
            channel
            for channel in self.channels()
            if ("private_channel" if channel["is_private"] else "public_channel") in types
            and not (excluded and channel["is_archived"])
        ]
        try:
            limit = min(max(int(params.get("limit", "100")), 1), 1000)
            offset = int(base64.b64decode(params["cursor"])) if params.get("cursor") else 0
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        end = offset + limit
        cursor = base64.b64encode(str(end).encode()).decode() if end < len(matching) else ""
        return {
            "ok": True,
            "channels": matching[offset:end],
            "response_metadata": {"next_cursor": cursor},
        }


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
