"""A fake Slack Web API: a real aiohttp app, served on loopback, behaving as Slack documents.

Every reply is HTTP 200 with `ok`, except throttling (429 + Retry-After). It records each call
and can be told to fail the next calls of a method (429, 5xx, slowness), or to enforce Slack's
tier-2 rule (`tier2_per_minute`: 429 beyond that many calls in any 60 s, per workspace and
method, as Slack counts them). Replies to calls made
with a token carry the scopes granted at install in `x-oauth-scopes`, and conversations.list
refuses types those scopes do not cover (`missing_scope` with `needed` and `provided`).

For browser tests it also plays Slack's authorize page (`/oauth/v2/authorize`): a consent
screen whose Allow button issues a code and redirects to the app's registered redirect URL,
as Slack does when the authorize request names no `redirect_uri` (SlackKit sends none).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from yarl import URL

from provider_gateway.demo.consent import ALLOW, consent_screen, refusal_screen

# What SlackKit asks for by default (useSlackAuth.ts), so what an install grants unless told.
SLACKKIT_SCOPES = ("chat:write", "chat:write.public", "channels:read", "groups:read")
# conversations.list: the read scope each conversation type needs.
TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}
# The tier-2 methods the gateway calls (Slack docs: each method's rate-limit tier).
TIER_2 = frozenset({"conversations.list"})


@dataclass
class Failure:
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    body: str = "<html>upstream error</html>"


@dataclass
class Call:
    method: str
    params: dict[str, str]
    token: str | None
    basic_auth: tuple[str, str] | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class TokenRecord:
    team_id: str | None
    enterprise_id: str | None
    bot_user_id: str
    expires_at: float | None = None
    revoked: bool = False
    scopes: tuple[str, ...] = SLACKKIT_SCOPES


@dataclass
class FakeSlack:
    apps: dict[str, tuple[str, str]] = field(default_factory=dict)  # client_id -> (secret, app_id)
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # team -> channels
    calls: list[Call] = field(default_factory=list)
    rotation: bool = False  # install replies carry refresh_token/expires_in
    token_lifetime: int = 43_200
    refresh_delay: float = 0.0
    scopes_header: bool = True  # False: replies without x-oauth-scopes (as some proxies strip)
    _tokens: dict[str, TokenRecord] = field(default_factory=dict)
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refresh_tokens: dict[str, str] = field(default_factory=dict)
    redirect_urls: dict[str, str] = field(default_factory=dict)  # client_id -> redirect URL
    authorize_requests: list[dict[str, str]] = field(default_factory=list)  # authorize queries
    _failures: dict[str, list[Failure]] = field(default_factory=dict)
    tier2_per_minute: int | None = None  # None: no limit enforced
    throttled: list[Call] = field(default_factory=list)  # calls answered 429 by that rule
    _tier2_calls: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_route("*", "/api/{method}", self._dispatch)
        self.app.router.add_get("/oauth/v2/authorize", self._authorize_page)
        self.app.router.add_post("/oauth/v2/authorize", self._authorize_approve)
        self.api_url = ""

    # ---- test controls -------------------------------------------------------------------
    def register_app(
        self,
        client_id: str,
        client_secret: str,
        app_id: str = "A0TEST",
        *,
        redirect_url: str | None = None,
    ) -> None:
        """`redirect_url` is the one registered in the app's OAuth settings (authorize page)."""
        self.apps[client_id] = (client_secret, app_id)
        if redirect_url is not None:
            self.redirect_urls[client_id] = redirect_url

    def add_workspace(self, team_id: str, channel_count: int, *, archived_every: int = 0) -> None:
        self.channels[team_id] = [
            {
                "id": f"C{team_id}{i:05d}",
                "name": f"channel-{i:05d}",
                "is_private": i % 7 == 0,
                "is_im": False,
                "is_archived": bool(archived_every) and i % archived_every == 0,
                "context_team_id": team_id,
            }
            for i in range(channel_count)
        ]

    def issue_code(
        self,
        team_id: str = "T0001",
        *,
        enterprise_id: str | None = None,
        org_install: bool = False,
        scopes: tuple[str, ...] = SLACKKIT_SCOPES,
    ) -> str:
        """A code whose install grants `scopes` (what the authorize request asked for)."""
        code = f"code-{next(self._serial)}"
        self._codes[code] = {
            "team_id": team_id,
            "enterprise_id": enterprise_id,
            "org": org_install,
            "scopes": scopes,
        }
        return code

    def mint_token(
        self,
        team_id: str | None = "T0001",
        *,
        expires_in: int | None = None,
        enterprise_id: str | None = None,
        scopes: tuple[str, ...] = SLACKKIT_SCOPES,
    ) -> str:
        rotating = expires_in is not None  # rotating tokens start with xoxe. (never check prefixes)
        token = f"{'xoxe.xoxb-1' if rotating else 'xoxb'}-{team_id}-{next(self._serial)}"
        self._tokens[token] = TokenRecord(
            team_id,
            enterprise_id,
            "U0BOT",
            time.time() + expires_in if expires_in else None,
            scopes=scopes,
        )
        return token

    def set_scopes(self, token: str, *scopes: str) -> None:
        """What the workspace has granted this install now (an admin re-approved the app)."""
        self._tokens[token].scopes = scopes

    def mint_refresh_token(self, access_token: str) -> str:
        refresh = f"xoxe-1-refresh-{next(self._serial)}"
        self._refresh_tokens[refresh] = access_token
        return refresh

    def revoke(self, token: str) -> None:
        self._tokens[token].revoked = True

    def fail_next(self, method: str, *failures: Failure) -> None:
        self._failures.setdefault(method, []).extend(failures)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    # ---- the authorize page (browser tests) -------------------------------------------------
    async def _authorize_page(self, request: web.Request) -> web.Response:
        """Slack's consent screen: which app wants which scopes in which workspace; Allow."""
        query = dict(request.query)
        self.authorize_requests.append(query)
        refusal = self._authorize_refusal(query)
        if refusal is not None:
            return refusal_screen(provider="Slack (fake)", error=refusal)
        client_id, scopes = query["client_id"], query["scope"].split(",")
        team = next(iter(self.channels), "T0001")
        return consent_screen(
            provider="Slack (fake)",
            heading=f"{self.apps[client_id][1]} is requesting permission to access the "
            f"Team {team} Slack workspace",
            details=[f"scope {scope}" for scope in scopes],
            fields={**query, "team": team},
        )

    async def _authorize_approve(self, request: web.Request) -> web.Response:
        """The Allow (or Cancel) button: back to the app's redirect URL with a code or error."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        refusal = self._authorize_refusal(form)
        if refusal is not None:
            return refusal_screen(provider="Slack (fake)", error=refusal)
        redirect = URL(form.get("redirect_uri") or self.redirect_urls[form["client_id"]])
        if form.get("decision") != ALLOW:
            outcome = {"error": "access_denied"}
        else:
            granted = tuple(form["scope"].split(","))
            outcome = {"code": self.issue_code(form.get("team") or "T0001", scopes=granted)}
        if "state" in form:
            outcome["state"] = form["state"]
        raise web.HTTPFound(str(redirect.update_query(outcome)))

    def _authorize_refusal(self, params: dict[str, str]) -> str | None:
        client_id = params.get("client_id", "")
        if client_id not in self.apps:
            return "invalid_client_id"
        if not params.get("scope"):
            return "invalid_scope"
        registered = self.redirect_urls.get(client_id)
        if registered is None:
            return "no_redirect_url"  # the app has none configured
        given = params.get("redirect_uri")
        if given and not given.startswith(registered):
            return "bad_redirect_uri"
        return None

    # ---- the API ---------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                params.update({k: str(v) for k, v in (await request.json()).items()})
            else:
                params.update({k: str(v) for k, v in (await request.post()).items()})
        token = _bearer(request.headers.get("Authorization")) or params.pop("token", None)
        self.calls.append(Call(method, params, token, _basic(request.headers.get("Authorization"))))
        wait = self._over_tier2(method, token)
        if wait is not None:
            self.throttled.append(self.calls[-1])
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": wait}
            )
        queued = self._failures.get(method)
        if queued:
            failure = queued.pop(0)
            if failure.delay:
                await asyncio.sleep(failure.delay)
            if failure.status == 429:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(failure.retry_after or 1)},
                )
            if failure.status != 200:
                return web.Response(
                    status=failure.status, text=failure.body, content_type="text/html"
                )
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        reply = await handler(params, token, request)
        return web.json_response(reply, headers=self._scope_headers(method, token))

    def _over_tier2(self, method: str, token: str | None) -> str | None:
        """Retry-After when this call breaks the tier-2 rule; else None (and it counts)."""
        if self.tier2_per_minute is None or method not in TIER_2:
            return None
        record = self._tokens.get(token or "")
        workspace = (record.team_id or record.enterprise_id) if record else token
        window = self._tier2_calls.setdefault((str(workspace), method), deque())
        now = time.monotonic()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.tier2_per_minute:
            return str(max(1, math.ceil(window[0] + 60 - now)))
        window.append(now)
        return None

    def _scope_headers(self, method: str, token: str | None) -> dict[str, str]:
        """Slack tells every caller with a token which scopes it holds (and what the method
        accepts), on successes and refusals alike."""
        record = self._tokens.get(token or "")
        if record is None or not self.scopes_header:
            return {}
        headers = {"x-oauth-scopes": ",".join(record.scopes)}
        if method == "conversations.list":
            headers["x-accepted-oauth-scopes"] = ",".join(TYPE_SCOPES.values())
        return headers

    async def _oauth_v2_access(
        self, params: dict[str, str], _token: str | None, request: web.Request
    ) -> dict[str, Any]:
        client_id, client_secret = _basic(request.headers.get("Authorization")) or (
            params.get("client_id", ""),
            params.get("client_secret", ""),
        )
        if client_id not in self.apps:
            return {"ok": False, "error": "invalid_client_id"}
        secret, app_id = self.apps[client_id]
        if client_secret != secret:
            return {"ok": False, "error": "bad_client_secret"}
        if params.get("grant_type") == "refresh_token":
            return await self._refresh(params.get("refresh_token", ""), app_id)
        grant = self._codes.pop(params.get("code", ""), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        if "redirect_uri" in params:
            return {"ok": False, "error": "bad_redirect_uri"}  # none was sent to authorize
        team_id = None if grant["org"] else grant["team_id"]
        token = self.mint_token(
            team_id,  # an org-wide token belongs to no workspace: conversations.list needs team_id
            expires_in=self.token_lifetime if self.rotation else None,
            enterprise_id=grant["enterprise_id"],
            scopes=grant["scopes"],
        )
        reply: dict[str, Any] = {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": ",".join(grant["scopes"]),
            "bot_user_id": "U0BOT",
            "app_id": app_id,
            "team": {"id": team_id, "name": f"Team {team_id}"} if team_id else None,
            "enterprise": {"id": grant["enterprise_id"], "name": "Grid"}
            if grant["enterprise_id"]
            else None,
            "is_enterprise_install": grant["org"],
            "authed_user": {"id": "U0HUMAN"},
        }
        if self.rotation:
            reply["refresh_token"] = self.mint_refresh_token(token)
            reply["expires_in"] = self.token_lifetime
        return reply

    async def _refresh(self, refresh_token: str, app_id: str) -> dict[str, Any]:
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        old = self._refresh_tokens.pop(refresh_token, None)  # single use, as Slack's are
        if old is None:
            return {"ok": False, "error": "invalid_refresh_token"}
        record = self._tokens[old]
        token = self.mint_token(
            record.team_id,
            expires_in=self.token_lifetime,
            enterprise_id=record.enterprise_id,
            scopes=record.scopes,
        )
        return {
            "ok": True,
            "access_token": token,
            "refresh_token": self.mint_refresh_token(token),
            "expires_in": self.token_lifetime,
            "token_type": "bot",
            "app_id": app_id,
            "team": {"id": record.team_id},
        }

    def _check(self, token: str | None) -> TokenRecord | dict[str, Any]:
        if not token:
            return {"ok": False, "error": "not_authed"}
        record = self._tokens.get(token)
        if record is None:
            return {"ok": False, "error": "invalid_auth"}
        if record.revoked:
            return {"ok": False, "error": "token_revoked"}
        if record.expires_at is not None and record.expires_at < time.time():
            return {"ok": False, "error": "token_expired"}
        return record

    async def _auth_test(
        self, _params: dict[str, str], token: str | None, _r: web.Request
    ) -> dict[str, Any]:
        record = self._check(token)
        if isinstance(record, dict):
            return record
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": f"Team {record.team_id}",
            "user": "bot",
            "team_id": record.team_id,
            "user_id": record.bot_user_id,
            "bot_id": "B0BOT",
            "is_enterprise_install": record.team_id is None,
        }

    async def _auth_revoke(
        self, _params: dict[str, str], token: str | None, _r: web.Request
    ) -> dict[str, Any]:
        record = self._check(token)
        if isinstance(record, dict):
            return {"ok": False, "error": "invalid_auth"}
        record.revoked = True
        return {"ok": True, "revoked": True}

    async def _conversations_list(
        self, params: dict[str, str], token: str | None, _r: web.Request
    ) -> dict[str, Any]:
        record = self._check(token)
        if isinstance(record, dict):
            return record
        team_id = params.get("team_id") or record.team_id
        if team_id is None:
            return {"ok": False, "error": "missing_argument"}
        limit = int(params.get("limit", "100"))
        if not 1 <= limit <= 1000:
            return {"ok": False, "error": "invalid_limit"}
        try:
            offset = (
                int(base64.b64decode(params["cursor"]).decode().removeprefix("offset:"))
                if params.get("cursor")
                else 0
            )
        except (ValueError, binascii.Error):
            return {"ok": False, "error": "invalid_cursor"}
        types = set(params.get("types", "public_channel").split(","))
        needed = [TYPE_SCOPES[kind] for kind in sorted(types) if kind in TYPE_SCOPES]
        if missing := [scope for scope in needed if scope not in record.scopes]:
            return {
                "ok": False,
                "error": "missing_scope",
                "needed": ",".join(missing),
                "provided": ",".join(record.scopes),
            }
        exclude_archived = params.get("exclude_archived", "false") in {"true", "1", "True"}
        matching = [
            channel
            for channel in self.channels.get(team_id, [])
            if ("private_channel" if channel["is_private"] else "public_channel") in types
            and not (exclude_archived and channel["is_archived"])
        ]
        page = matching[offset : offset + limit]
        next_offset = offset + limit
        cursor = (
            base64.b64encode(f"offset:{next_offset}".encode()).decode()
            if next_offset < len(matching)
            else ""
        )
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password
