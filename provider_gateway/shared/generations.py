"""Generations read from Redis, kept in-process while an announcement subscription vouches
for them, so a cached listing needs no Redis round trip to learn its tenant's generation.

A write stores a fresh generation and announces the key in one script (announcements.py);
each replica forgets an announced key as it hears of it. A copy is trusted only while:
- the subscription was established before the read that fetched it, and has not failed since
  (any failure forgets every copy; reads go to Redis until subscribed again, after a backoff);
- no announcement (of any key) arrived while that read was in flight, and the shared backend
  did not fail meanwhile (its in-process fallback is not the shared truth);
- the subscription answered within the last SILENCE_LIMIT_SECONDS (pings when idle), and
  the copy is younger than TRUST_SECONDS: a bound even on a failure nobody noticed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from provider_gateway.shared.announcements import SILENCE_LIMIT_SECONDS
from provider_gateway.shared.backends import BackendUnavailable
from provider_gateway.shared.state import SharedState

log = logging.getLogger(__name__)

TRUST_SECONDS = 5.0
_CAPACITY = 100_000
_FIRST_RETRY_SECONDS, _LAST_RETRY_SECONDS = 0.1, 5.0

Ticket = tuple[int, int, int]


class LocalGenerations:
    def __init__(self, state: SharedState, *, trust_seconds: float = TRUST_SECONDS) -> None:
        self._state = state
        self._trust = trust_seconds
        self._copies: dict[str, tuple[str, float]] = {}
        self._subscribed = False
        self._epoch = 0  # one per subscription (and per failure)
        self._heard = 0  # announcements heard, failures included
        self._last_alive = 0.0
        self.subscriptions = 0  # established so far (for tests and metrics)

    @property
    def announcing(self) -> bool:
        """Whether `run` subscribes at all (a backend that announces writes)."""
        return self._state.announces

    # Reads -----------------------------------------------------------------------------
    def lookup(self, key: str) -> str | None:
        """The key's value as the last write left it, or None: ask Redis."""
        entry = self._copies.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if now >= entry[1] or now - self._last_alive > SILENCE_LIMIT_SECONDS:
            return None
        return entry[0]

    def ticket(self) -> Ticket | None:
        """Take before reading a key from Redis; `keep` the value read with it."""
        if not self._subscribed or not self._state.sharing:
            return None
        return (self._epoch, self._heard, self._state.failures)

    def keep(self, key: str, value: str, ticket: Ticket | None) -> None:
        if ticket is None or ticket != (self._epoch, self._heard, self._state.failures):
            return  # subscribed, announced or failed since the read began: not vouched for
        if len(self._copies) >= _CAPACITY:
            self._copies.clear()
        self._copies[key] = (value, time.monotonic() + self._trust)

    def forget(self, key: str) -> None:
        """This replica changed `key`: stop using its copy now, not when the echo arrives."""
        self.changed(key)

    # The subscription (Listener) -------------------------------------------------------
    def subscribed(self) -> None:
        self._reset()
        self._subscribed = True
        self._last_alive = time.monotonic()
        self.subscriptions += 1

    def changed(self, key: str) -> None:
        self._heard += 1
        self._copies.pop(key, None)
        self._last_alive = time.monotonic()

    def alive(self) -> None:
        self._last_alive = time.monotonic()

    def _reset(self) -> None:
        self._subscribed = False
        self._copies.clear()
        self._epoch += 1
        self._heard += 1

    async def run(self) -> None:
        """Keep subscribed while the backend announces; run as a task, cancel to stop."""
        if not self._state.announces:
            return
        delay, attempts = _FIRST_RETRY_SECONDS, 0
        while True:
            subscriptions = self.subscriptions
            try:
                await self._state.listen(self)
            except BackendUnavailable as error:
                if self._subscribed or attempts == 0:
                    log.warning("generation announcements lost (%s): reading Redis", error)
            except Exception:  # a redis-py failure of another kind: never stop retrying
                log.exception("generation announcements failed: reading Redis")
            finally:
                self._reset()
            if self.subscriptions > subscriptions:
                delay = _FIRST_RETRY_SECONDS  # it worked for a while: retry promptly
            await asyncio.sleep(delay)
            delay, attempts = min(delay * 2, _LAST_RETRY_SECONDS), attempts + 1
