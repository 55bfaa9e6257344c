"""Knock's rate limits: per endpoint tier, per environment (and per user for user tokens),
counted in shared state so every replica enforces the same budget."""

from __future__ import annotations

import time

from provider_gateway.auth import Principal
from provider_gateway.errors import RateLimited
from provider_gateway.shared.state import SharedState

# Tiers as Knock's OpenAPI assigns them (x-ratelimit-tier).
PROVIDERS_TIER = 2
CHANNEL_DATA_READ_TIER = 4
CHANNEL_DATA_WRITE_TIER = 3
# listUsers / getUser 4, identifyUser 3, deleteUser 2.
USERS_TIERS = {"GET": 4, "PUT": 3, "DELETE": 2}


def tier_for(method: str, path: str) -> int | None:
    if path.startswith("/v1/providers/"):
        return PROVIDERS_TIER
    if "/channel_data/" in path:
        return CHANNEL_DATA_READ_TIER if method == "GET" else CHANNEL_DATA_WRITE_TIER
    if path == "/v1/users" or path.startswith("/v1/users/"):
        return USERS_TIERS.get(method)
    return None


class RateLimiter:
    def __init__(self, state: SharedState, limits: dict[int, int]) -> None:
        self._state = state
        self._limits = limits
        self.limited = 0  # requests refused, for metrics

    async def check(self, principal: Principal, tier: int) -> None:
        limit = self._limits.get(tier)
        if not limit:
            return
        window = int(time.time())
        # With a user token Knock scopes the limit by environment and signing user.
        who = f"user:{principal.user_id}" if principal.user_id else "key"
        count = await self._state.hit(f"rate:{principal.environment.id}:{who}:{tier}:{window}", 2)
        if count > limit:
            self.limited += 1
            raise RateLimited(
                1, f"Rate limit of {limit} requests per second exceeded (tier {tier})"
            )
