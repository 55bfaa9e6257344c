"""The generic cell rate algorithm (GCRA): one smooth budget per key, in one stored number.

A budget is `burst` requests at once, refilled at one request per `interval` seconds. For each
key only the theoretical arrival time (TAT) is kept: the moment the budget would be full
again. A request conforms when, after adding it, the TAT is at most `burst` intervals ahead.
Unlike fixed windows, this never admits two windows' worth around a boundary, and a refused
request learns exactly when it would conform.

The same primitive serves two uses: rate limiting (`max_delay=0`: refuse what does not
conform now) and pacing (`max_delay>0`: reserve a slot up to that far in the future; the
caller sleeps `delay` before its call, so a queue of callers is spaced `interval` apart).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

# KEYS[1] the TAT key. ARGV: interval, burst, max_delay (all microseconds except burst).
# Times come from the Redis server's clock so every replica measures against the same one.
# Returns {admitted, delay_us, remaining, reset_us}; one key, so it runs on Redis Cluster.
GCRA_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local delay = new_tat - burst * interval - now
if delay > max_delay then
  return {0, delay, 0, tat - now}
end
-- %.0f: Lua would pass a bare number as '%.14g', losing microseconds of a 16-digit time.
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
if delay < 0 then delay = 0 end
local remaining = math.floor((now + burst * interval - new_tat) / interval)
if remaining < 0 then remaining = 0 end
return {1, delay, remaining, new_tat - now}
"""

# An upstream's own "retry after `hold`" (a 429) on the same key: push the TAT out so that the
# next admission waits `hold`, and the budget then refills from empty. KEYS[1] the TAT key.
# ARGV: interval, burst, hold (microseconds except burst). Returns the TAT's distance from now.
GCRA_DEFER_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local held = now + tonumber(ARGV[3]) + (burst - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if held > tat then
  local ttl_ms = math.max(1, math.ceil((held - now) / 1000))
  redis.call('SET', KEYS[1], string.format('%.0f', held), 'PX', string.format('%.0f', ttl_ms))
  tat = held
end
return tat - now
"""


@dataclass(frozen=True)
class Budget:
    """`burst` requests at once, then one per `interval` seconds."""

    interval: float
    burst: int

    @classmethod
    def per_second(cls, rate: float, burst: int | None = None) -> Budget:
        return cls(1.0 / rate, max(1, burst if burst is not None else math.ceil(rate)))

    @classmethod
    def per_minute(cls, rate: float, burst: int) -> Budget:
        return cls(60.0 / rate, burst)


@dataclass(frozen=True)
class Admission:
    """What the budget said about one request.

    admitted: it may go (after `delay` seconds when pacing); else `delay` is how long until
    it would have been admitted without waiting (Retry-After). `remaining`: requests that
    would be admitted at once after this one. `reset`: seconds until the budget is full."""

    admitted: bool
    delay: float
    remaining: int
    reset: float


def gcra_micros(budget: Budget, max_delay: float) -> tuple[int, int, int]:
    """The script's arguments: interval and max_delay in microseconds, burst."""
    return (
        max(1, round(budget.interval * 1_000_000)),
        budget.burst,
        max(0, round(max_delay * 1_000_000)),
    )


def admission_from_reply(reply: list[int]) -> Admission:
    admitted, delay, remaining, reset = (int(value) for value in reply)
    return Admission(bool(admitted), delay / 1_000_000, remaining, reset / 1_000_000)


class LocalGcra:
    """The same algorithm in-process (monotonic clock), for the embedded default and for
    while Redis is unreachable. Expired keys are dropped once the table doubles."""

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._sweep_at = 10_000

    def take(self, key: str, budget: Budget, max_delay: float) -> Admission:
        now = time.monotonic()
        tat = max(self._tats.get(key, now), now)
        new_tat = tat + budget.interval
        delay = (tat - now) - (budget.burst - 1) * budget.interval
        if delay > max_delay + 1e-9:
            return Admission(False, delay, 0, tat - now)
        self._sweep(now)
        self._tats[key] = new_tat
        # The epsilon keeps float rounding from losing a whole request.
        remaining = math.floor(
            (now + budget.burst * budget.interval - new_tat) / budget.interval + 1e-9
        )
        return Admission(True, max(0.0, delay), max(0, remaining), new_tat - now)

    def defer(self, key: str, budget: Budget, hold: float) -> None:
        """Nothing is admitted for `hold` seconds; then the budget refills from empty."""
        now = time.monotonic()
        held = now + hold + (budget.burst - 1) * budget.interval
        if held > self._tats.get(key, now):
            self._sweep(now)
            self._tats[key] = held

    def _sweep(self, now: float) -> None:
        if len(self._tats) > self._sweep_at:
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
            self._sweep_at = max(10_000, 2 * len(self._tats))
