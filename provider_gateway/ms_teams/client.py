"""Microsoft Graph calls over the shared aiohttp session; failures become typed errors."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp

from provider_gateway.errors import (
    InvalidParams,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from provider_gateway.http_client import retry_after_seconds
from provider_gateway.observe import UpstreamObserver, ignore
from provider_gateway.shared.pacing import Pace, Pacer, retry_after_header, within

log = logging.getLogger(__name__)
# Graph's Teams limit for these GETs: 30 requests per second per app per tenant (docs: Microsoft
# Graph service-specific throttling limits), paced one short of it (see `within`).
TENANT_BUDGET = within(30, 1.0)


def tenant_pace(client_id: str, tenant_id: str) -> Pace:
    """The budget a Graph call for this app in this Entra tenant spends."""
    key = hashlib.sha256(f"{client_id}\x1f{tenant_id}".encode()).hexdigest()
    return Pace(f"pace:graph:{key[:40]}", TENANT_BUDGET)


class GraphRefusal(Exception):
    """Graph refused the app token (401/403): consent withdrawn, permission missing."""

    def __init__(self, code: str, *, status: int = 403, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.message = message  # Graph's error.message, e.g. "Missing role permissions on…"


class GraphClient:
    """Calls for a tenant wait for their slot in its budget (pacer). Graph throttles with 429
    (and 503/504) plus Retry-After: that holds the tenant's budget, and one retry is made if
    it fits the request's deadline; otherwise the caller (the Knock JS client does) retries
    later."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        graph_url: str,
        *,
        pacer: Pacer | None = None,
        observe: UpstreamObserver = ignore,
    ) -> None:
        self._session = session
        self._base = f"{graph_url}/v1.0"
        self._pacer = pacer or Pacer(None, max_wait=2.0)
        self._observe = observe

    async def list_teams(
        self, token: str, params: Mapping[str, str], *, pace: Pace
    ) -> tuple[list[dict[str, Any]], str | None]:
        body = await self._get(token, "/teams", params, pace)
        return list(body.get("value") or []), skip_token(body.get("@odata.nextLink"))

    async def list_channels(
        self, token: str, team_id: str, params: Mapping[str, str], *, pace: Pace
    ) -> list[dict[str, Any]]:
        # Callers pass a validated GUID; encoding the segment anyway means no value can ever
        # climb out of /teams/{id} ("..", "/", "?" and "#" stay inside it).
        body = await self._get(token, f"/teams/{_segment(team_id)}/channels", params, pace)
        return list(body.get("value") or [])

    async def _get(
        self, token: str, path: str, params: Mapping[str, str], pace: Pace
    ) -> dict[str, Any]:
        url = self._base + path
        method = "GET /teams" if path == "/teams" else "GET /teams/{id}/channels"
        deadline = self._pacer.deadline()
        retried = False
        while True:
            await self._pacer.take(pace, deadline, "Microsoft Graph")
            started = time.perf_counter()
            try:
                async with self._session.get(
                    url, params=dict(params), headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    status, headers = response.status, response.headers
                    body = await _json(response)
            except TimeoutError:
                self._observe("graph", method, "timeout", time.perf_counter() - started)
                raise UpstreamTimeout("Microsoft Graph did not answer in time") from None
            except aiohttp.ClientError as exc:
                self._observe("graph", method, "network_error", time.perf_counter() - started)
                log.warning("graph GET %s failed: %s", path.split("/")[1], type(exc).__name__)
                raise UpstreamError("Microsoft Graph could not be reached") from None
            self._observe("graph", method, str(status), time.perf_counter() - started)
            if status == 200:
                return body
            if status in {429, 503, 504}:
                retry_after = retry_after_seconds(headers)
                fits = await self._pacer.throttled(pace, retry_after, deadline)
                if not retried and fits:
                    retried = True
                    continue
                raise _throttled(status, retry_after)
            raise _refusal(status, body)


def _segment(value: str) -> str:
    if value in {"", ".", ".."}:
        raise InvalidParams.field("team_id", "is not a team id")
    return quote(value, safe="")


def skip_token(next_link: object) -> str | None:
    """`$skiptoken` from `@odata.nextLink`, URL-decoded once; sent back as is, it round-trips."""
    if not isinstance(next_link, str) or not next_link:
        return None
    # Percent-decoding only: parse_qsl would also turn a literal "+" into a space.
    for pair in urlsplit(next_link).query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key).lower() == "$skiptoken":
            return unquote(value)
    return None


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _throttled(status: int, retry_after: float) -> Exception:
    seconds = retry_after_header(retry_after)
    if status == 429:
        return RateLimited(seconds, "Microsoft Graph is throttling these requests")
    if status == 504:
        return UpstreamTimeout("Microsoft Graph timed out")
    return UpstreamError("Microsoft Graph is unavailable", headers={"Retry-After": str(seconds)})


def _refusal(status: int, body: Mapping[str, Any]) -> Exception:
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str((error or {}).get("code") or f"http_{status}")
    message = str((error or {}).get("message") or "")[:300]
    if status in {401, 403}:
        return GraphRefusal(code, status=status, message=message)
    if status == 404:
        return NotFound(f"Microsoft Graph: {message or code}")
    if status == 400:
        return InvalidParams.field(
            "query_options", f"Microsoft Graph refused it: {message or code}"
        )
    log.warning("graph answered HTTP %s (%s)", status, code)
    return UpstreamError(f"Microsoft Graph answered HTTP {status}")
