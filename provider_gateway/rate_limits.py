"""Rate limits by Knock's endpoint tiers, on smooth GCRA budgets shared by every replica.

Public-key callers (browsers) are limited per environment and signing user; secret-key
callers (the owner's backend) per environment, and by default not at all: Knock's hosted tiers
protect Knock's shared infrastructure, while a self-hosted gateway serves its owner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from provider_gateway.auth import Principal
from provider_gateway.errors import RateLimited
from provider_gateway.shared.gcra import Admission, Budget
from provider_gateway.shared.state import SharedState

# Tiers as Knock's OpenAPI assigns them (x-ratelimit-tier).
PROVIDERS_TIER = 2
CHANNEL_DATA_READ_TIER = 4
CHANNEL_DATA_WRITE_TIER = 3
# listUsers / getUser 4, identifyUser 3, deleteUser 2.
USERS_TIERS = {"GET": 4, "PUT": 3, "DELETE": 2}
# A budget holds this many seconds' worth of its rate. One second's worth refused a real page:
# SlackKit and TeamsKit together check both connections, page through channels and revoke
# within a second, and the kits do not retry a refused revoke. Ten seconds lets an honest page
# through whole while a loop is still held to the tier's rate.
BURST_SECONDS = 10


def tier_for(method: str, path: str) -> int | None:
    if path.startswith("/v1/providers/"):
        return PROVIDERS_TIER
    if "/channel_data/" in path:
        return CHANNEL_DATA_READ_TIER if method == "GET" else CHANNEL_DATA_WRITE_TIER
    if path == "/v1/users" or path.startswith("/v1/users/"):
        return USERS_TIERS.get(method)
    return None


@dataclass(frozen=True)
class Verdict:
    """One request against its tier's budget, and the headers that tell the caller about it
    (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` and `RateLimit` as structured
    field lists; `t` is when the budget is full again, in whole seconds)."""

    tier: int
    rate: int  # requests per second; the budget holds BURST_SECONDS of them
    admission: Admission

    @property
    def policy(self) -> str:
        return f"tier-{self.tier}"

    def headers(self) -> dict[str, str]:
        reset = max(0, math.ceil(self.admission.reset))
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.rate * BURST_SECONDS};w={BURST_SECONDS}',
            "RateLimit": f'"{self.policy}";r={self.admission.remaining};t={reset}',
        }

    def enforce(self) -> None:
        """Raise the 429 (Knock's body, `Retry-After` in whole seconds, at least 1)."""
        if not self.admission.admitted:
            raise RateLimited(
                math.ceil(self.admission.delay),
                f"Rate limit of {self.rate} requests per second exceeded (tier {self.tier})",
            )


class RateLimiter:
    def __init__(self, state: SharedState, public: dict[int, int], secret: dict[int, int]) -> None:
        self._state = state
        self._public = public
        self._secret = secret
        self.limited = 0  # requests refused, for metrics

    def rate_for(self, principal: Principal, tier: int) -> int | None:
        """Requests per second this caller may make on this tier; None: not limited."""
        limits = self._secret if principal.is_secret else self._public
        return limits.get(tier)

    async def take(self, principal: Principal, tier: int) -> Verdict | None:
        """Spend one request of the caller's budget; None when the caller is not limited."""
        rate = self.rate_for(principal, tier)
        if not rate:
            return None
        # With a user token Knock scopes the limit by environment and signing user.
        caller = "key" if principal.is_secret else f"user:{principal.user_id}"
        key = f"rate:{principal.environment.id}:{tier}:{caller}"
        admission = await self._state.gcra(key, Budget.per_second(rate, rate * BURST_SECONDS))
        if not admission.admitted:
            self.limited += 1
        return Verdict(tier, rate, admission)
