"""Slack Web API calls through slack-sdk's AsyncWebClient; every failure becomes a typed error."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from provider_gateway.errors import RateLimited, UpstreamError, UpstreamTimeout
from provider_gateway.http_client import retry_after_seconds
from provider_gateway.observe import UpstreamObserver, ignore
from provider_gateway.shared.pacing import Pace, Pacer, retry_after_header
from provider_gateway.slack.pacing import Workspace

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

log = logging.getLogger(__name__)
# slack-sdk logs request forms (OAuth codes, refresh tokens) and response bodies (tokens)
# whenever its logger's own level is DEBUG or unset. Its logger here is pinned above that.
_SDK_LOG = logging.getLogger("provider_gateway.slack.sdk")
_SDK_LOG.setLevel(logging.WARNING)


# auth.revoke errors that mean the token is already dead: revoking it again is done.
ALREADY_REVOKED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class SlackRefusal(Exception):
    """Slack answered `ok: false` with an error code (e.g. invalid_auth, token_revoked).

    A `missing_scope` refusal also says which scopes the method `needed` and which the token
    `provided` (comma-separated, as Slack sends them).
    """

    def __init__(
        self, method: str, error: str, *, needed: str | None = None, provided: str | None = None
    ) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error
        self.needed = needed
        self.provided = provided


@dataclass(frozen=True)
class AuthTest:
    """auth.test's reply, and the token's scopes from its `x-oauth-scopes` header (None when
    Slack sent none)."""

    reply: dict[str, Any]
    scopes: frozenset[str] | None


class SlackClient:
    """Upstream calls only. Calls for a workspace wait for their slot in its budget (pacer);
    a 429 holds that budget for its Retry-After and is retried once if that fits the
    request's deadline. Longer waits, network errors, 5xx and timeouts surface as
    RateLimited / UpstreamError / UpstreamTimeout."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        pacer: Pacer | None = None,
        observe: UpstreamObserver = ignore,
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._pacer = pacer or Pacer(None, max_wait=2.0)
        self._observe = observe

    def _web(self, token: str | None = None) -> AsyncWebClient:
        # slack-sdk takes long to import: loaded on first use (serving.warm_imports preloads it).
        from slack_sdk.web.async_client import AsyncWebClient

        # retry_handlers=[]: slack-sdk would otherwise re-send after a connection error, and an
        # OAuth code or refresh token is single-use. Retries are decided here instead.
        return AsyncWebClient(
            token=token,
            base_url=self._base_url,
            session=self._session,
            retry_handlers=[],
            logger=_SDK_LOG,
        )

    async def auth_test(self, token: str, *, workspace: Workspace) -> AuthTest:
        response = await self._send(
            "auth.test", lambda: self._web(token).auth_test(), workspace.pace("auth.test")
        )
        return AuthTest(_data(response), _scopes(response.headers))

    async def auth_revoke(self, token: str, *, workspace: Workspace) -> dict[str, Any]:
        return await self._call(
            "auth.revoke", lambda: self._web(token).auth_revoke(), workspace.pace("auth.revoke")
        )

    async def conversations_list(
        self,
        token: str,
        *,
        cursor: str | None,
        limit: int,
        exclude_archived: bool,
        types: str,
        team_id: str | None,
        workspace: Workspace,
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "limit": limit,
            "exclude_archived": exclude_archived,
            "types": types,
        }
        if cursor:
            arguments["cursor"] = cursor
        if team_id:
            arguments["team_id"] = team_id
        return await self._call(
            "conversations.list",
            lambda: self._web(token).conversations_list(**arguments),
            workspace.pace("conversations.list"),
        )

    async def oauth_v2_access(
        self, client_id: str, client_secret: str, code: str
    ) -> dict[str, Any]:
        """Exchange a code. No redirect_uri: SlackKit sends none to authorize (Slack requires
        the two to match), so Slack uses the app's registered redirect URL."""
        return await self._oauth(client_id, client_secret, {"code": code})

    async def oauth_v2_refresh(
        self, client_id: str, client_secret: str, refresh_token: str
    ) -> dict[str, Any]:
        return await self._oauth(
            client_id,
            client_secret,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )

    async def _oauth(
        self, client_id: str, client_secret: str, form: dict[str, str]
    ) -> dict[str, Any]:
        # Client credentials go in HTTP Basic auth, as Slack prefers. Built here rather than
        # through WebClient.oauth_v2_access, which uses aiohttp.BasicAuth (deprecated in
        # aiohttp 3.14, so every exchange would warn).
        credentials = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        return await self._call(
            "oauth.v2.access",
            lambda: self._web().api_call(
                "oauth.v2.access",
                data=form,
                headers={"Authorization": f"Basic {credentials}"},
            ),
            None,  # not a workspace's call: Slack does not count it against one
            retry_on_429=False,  # a code or refresh token is single-use: never send it twice
        )

    async def _call(
        self,
        method: str,
        send: Callable[[], Awaitable[AsyncSlackResponse]],
        pace: Pace | None,
        *,
        retry_on_429: bool = True,
    ) -> dict[str, Any]:
        return _data(await self._send(method, send, pace, retry_on_429=retry_on_429))

    async def _send(
        self,
        method: str,
        send: Callable[[], Awaitable[AsyncSlackResponse]],
        pace: Pace | None,
        *,
        retry_on_429: bool = True,
    ) -> AsyncSlackResponse:
        """The whole response (headers too) of a call that succeeded; every failure typed."""
        from slack_sdk.errors import SlackApiError

        deadline = self._pacer.deadline()
        retried = False
        while True:
            await self._pacer.take(pace, deadline, "Slack")
            started = time.perf_counter()
            try:
                response = await send()
                self._observe("slack", method, "200", time.perf_counter() - started)
                return response
            except SlackApiError as exc:
                status = exc.response.status_code
                outcome = "refused" if status == 200 else str(status)
                self._observe("slack", method, outcome, time.perf_counter() - started)
                if status == 429:
                    retry_after = retry_after_seconds(exc.response.headers)
                    fits = await self._pacer.throttled(pace, retry_after, deadline)
                    if retry_on_429 and not retried and fits:
                        retried = True
                        continue
                    raise RateLimited(
                        retry_after_header(retry_after), f"Slack is rate limiting {method}"
                    ) from None
                if status != 200:
                    log.warning("slack %s answered HTTP %s", method, status)
                    raise UpstreamError(f"Slack answered HTTP {status} to {method}") from None
                data = exc.response.data if isinstance(exc.response.data, dict) else {}
                raise SlackRefusal(
                    method,
                    str(data.get("error") or "unknown_error"),
                    needed=_text(data.get("needed")),
                    provided=_text(data.get("provided")),
                ) from None
            except TimeoutError:
                self._observe("slack", method, "timeout", time.perf_counter() - started)
                log.warning("slack %s timed out", method)
                raise UpstreamTimeout(f"Slack did not answer {method} in time") from None
            except aiohttp.ClientError as exc:
                self._observe("slack", method, "network_error", time.perf_counter() - started)
                log.warning("slack %s failed: %s", method, type(exc).__name__)
                raise UpstreamError(f"Slack could not be reached for {method}") from None


def _data(response: AsyncSlackResponse) -> dict[str, Any]:
    return response.data if isinstance(response.data, dict) else {}


def _scopes(headers: Mapping[str, str]) -> frozenset[str] | None:
    """The token's scopes from `x-oauth-scopes` (header names compared case-insensitively)."""
    value = next((v for k, v in headers.items() if k.lower() == "x-oauth-scopes"), None)
    if value is None:
        return None
    return frozenset(scope.strip() for scope in value.split(",") if scope.strip())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
