"""Upstream pacing: each call to Slack or Graph made for a tenant spends from the budget of the
account the upstream counts it against (a Slack workspace and method, an Entra tenant),
shared by every replica through SharedState's GCRA (one Redis round trip per call).

A call that would exceed its budget waits for its slot while the wait fits the request's
deadline, else the caller gets 429 with Retry-After. An upstream's own throttling answer
(Retry-After) holds the same budget, so no replica calls that account again before then.
Cached answers never get here: pacing sits at the upstream call, after the cache.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from provider_gateway.errors import RateLimited
from provider_gateway.shared.gcra import Budget
from provider_gateway.shared.state import SharedState


def within(limit: int, window: float) -> Budget:
    """A budget that never makes more than `limit - 1` calls in any `window` seconds.

    GCRA admits at most `burst + window / interval` calls in any window; a fifth of the
    allowance goes at once, the rest is spread over the window, and one call is kept in hand
    for network jitter between taking a slot and reaching the upstream.
    """
    burst = max(1, limit // 5)
    return Budget(interval=window / max(1, limit - 1 - burst), burst=burst)


@dataclass(frozen=True)
class Pace:
    """What one upstream call spends: the account's key and its budget."""

    key: str
    budget: Budget


class Pacer:
    """Waits for upstream slots. With `state` None (pacing off) it only bounds retry waits."""

    def __init__(self, state: SharedState | None, *, max_wait: float) -> None:
        self._state = state
        self.max_wait = max_wait

    def deadline(self) -> float:
        """When a request's waits for the upstream must end (monotonic clock)."""
        return time.monotonic() + self.max_wait

    async def take(self, pace: Pace | None, deadline: float, upstream: str) -> None:
        """Wait for a slot in `pace`'s budget; RateLimited when it would come after `deadline`."""
        if self._state is None or pace is None:
            return
        admission = await self._state.gcra(
            pace.key, pace.budget, max(0.0, deadline - time.monotonic())
        )
        if not admission.admitted:
            raise RateLimited(
                retry_after_header(admission.delay),
                f"{upstream} allows this account no more calls right now; "
                "retry after the time in the Retry-After header",
            )
        if admission.delay > 0:
            await asyncio.sleep(admission.delay)

    async def throttled(self, pace: Pace | None, retry_after: float, deadline: float) -> bool:
        """The upstream answered "retry after `retry_after` seconds" for `pace`'s account.

        Its budget is held that long on every replica. True when one retry still fits the
        deadline: the caller then retries once, and `take` waits for the slot (without pacing,
        the wait is taken here)."""
        fits = time.monotonic() + retry_after <= deadline
        if self._state is not None and pace is not None:
            await self._state.gcra_defer(pace.key, pace.budget, retry_after)
        elif fits:
            await asyncio.sleep(retry_after)
        return fits


def retry_after_header(seconds: float) -> int:
    """Whole seconds, at least 1, never earlier than `seconds` (sub-millisecond noise aside)."""
    return max(1, math.ceil(seconds - 0.001))
