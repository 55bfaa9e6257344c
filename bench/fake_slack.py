"""A minimal Slack Web API for the benchmarks (bench/ never imports the test suite).

It answers the two methods the measured paths call, `auth.test` and `conversations.list`
(Slack's shapes and opaque cursors), and counts calls. A token names its workspace
(`xoxb-<team>-<n>`), so 100,000 tenants cost the fake no state.

It can hold conversations.list to Slack's tier 2 (`tier2_per_minute`: 429 beyond that many
calls in any 60 s per workspace) and inject throttling on top (`inject_429_every`: every Nth
call answers 429 with `Retry-After: 1`, as Slack does at busy times whatever the rate).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web


class FakeSlack:
    def __init__(self, default_channels: int = 20) -> None:
        self.app = web.Application()
        self.app.router.add_route("*", "/api/{method}", self._dispatch)
        self.api_url = ""
        self.calls: Counter[str] = Counter()
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._default_channels = default_channels
        self._serial = itertools.count(1)
        self.tier2_per_minute: int | None = None
        self.inject_429_every = 0
        self.rule_429s = 0  # answered 429 because the caller broke the tier-2 rule
        self.injected_429s = 0
        self._windows: dict[str, deque[float]] = {}

    def add_workspace(self, team_id: str, channel_count: int) -> None:
        self._channels[team_id] = _channels(team_id, channel_count)

    def mint_token(self, team_id: str) -> str:
        return f"xoxb-{team_id}-{next(self._serial)}"

    def calls_to(self, method: str) -> int:
        return self.calls[method]

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls[method] += 1
        params = {**request.query, **{k: str(v) for k, v in (await request.post()).items()}}
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        parts = token.split("-")
        if len(parts) != 3 or parts[0] != "xoxb":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        team_id = parts[1]
        if method == "auth.test":
            return web.json_response(
                {"ok": True, "team_id": team_id, "user_id": "U0BOT", "bot_id": "B0BOT"},
                headers={"X-OAuth-Scopes": "channels:read,groups:read,chat:write"},
            )
        if method == "conversations.list":
            throttled = self._throttle(team_id)
            if throttled is not None:
                return throttled
            return web.json_response(self._page(team_id, params))
        return web.json_response({"ok": False, "error": "unknown_method"})

    def _throttle(self, team_id: str) -> web.Response | None:
        """429 when this call is an injected one or breaks the tier-2 rule (neither counts)."""
        if self.inject_429_every and self.calls["conversations.list"] % self.inject_429_every == 0:
            self.injected_429s += 1
            return _ratelimited(1)
        if self.tier2_per_minute is None:
            return None
        window = self._windows.setdefault(team_id, deque())
        now = time.monotonic()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.tier2_per_minute:
            self.rule_429s += 1
            return _ratelimited(max(1, math.ceil(window[0] + 60 - now)))
        window.append(now)
        return None

    def _page(self, team_id: str, params: dict[str, str]) -> dict[str, Any]:
        channels = self._channels.get(team_id) or _channels(team_id, self._default_channels)
        try:
            offset = int(base64.b64decode(params.get("cursor") or "MA==").decode() or 0)
            limit = int(params.get("limit", "100"))
        except (ValueError, binascii.Error):
            return {"ok": False, "error": "invalid_cursor"}
        end = offset + limit
        cursor = base64.b64encode(str(end).encode()).decode() if end < len(channels) else ""
        return {
            "ok": True,
            "channels": channels[offset:end],
            "response_metadata": {"next_cursor": cursor},
        }


def _ratelimited(retry_after: int) -> web.Response:
    return web.json_response(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
    )


def _channels(team_id: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"C{team_id}{number:05d}",
            "name": f"channel-{number:05d}",
            "is_private": number % 7 == 0,
            "is_im": False,
            "is_archived": False,
            "context_team_id": team_id,
        }
        for number in range(count)
    ]
