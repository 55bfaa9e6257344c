"""Microsoft Graph calls over the shared aiohttp session; failures become typed errors."""

from __future__ import annotations

import asyncio
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

log = logging.getLogger(__name__)


class GraphRefusal(Exception):
    """Graph refused the app token (401/403): consent withdrawn, permission missing."""

    def __init__(self, code: str, *, status: int = 403, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.message = message  # Graph's error.message, e.g. "Missing role permissions on…"


class GraphClient:
    """Graph throttles with 429 (and 503/504) plus Retry-After: a short wait is taken once,
    a long one is handed to the caller, who (the Knock JS client does) retries later."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        graph_url: str,
        *,
        max_retry_wait: float = 2.0,
        observe: UpstreamObserver = ignore,
    ) -> None:
        self._session = session
        self._base = f"{graph_url}/v1.0"
        self._max_retry_wait = max_retry_wait
        self._observe = observe

    async def list_teams(
        self, token: str, params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], str | None]:
        body = await self._get(token, "/teams", params)
        return list(body.get("value") or []), skip_token(body.get("@odata.nextLink"))

    async def list_channels(
        self, token: str, team_id: str, params: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        # Callers pass a validated GUID; encoding the segment anyway means no value can ever
        # climb out of /teams/{id} ("..", "/", "?" and "#" stay inside it).
        body = await self._get(token, f"/teams/{_segment(team_id)}/channels", params)
        return list(body.get("value") or [])

    async def _get(self, token: str, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = self._base + path
        method = "GET /teams" if path == "/teams" else "GET /teams/{id}/channels"
        waited = False
        while True:
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
                if not waited and retry_after <= self._max_retry_wait:
                    waited = True
                    await asyncio.sleep(retry_after)
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
    seconds = max(1, round(retry_after))
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
