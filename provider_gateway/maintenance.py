"""Background upkeep: prune audit events past `GATEWAY_AUDIT_RETENTION_DAYS`, a while after
start-up and then every few hours, on one replica at a time.

Each round is claimed with a shared set-if-absent key that lives as long as the round's
period: whichever replica gets there first prunes, the others skip that period. With Redis
down each replica claims alone, which only repeats idempotent deletes. Idempotency records
and cached pages need no pruning here: they are kept with an expiry (Redis drops them; the
in-process store sweeps them as it grows).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.shared.state import SharedState
from provider_gateway.storage.audit import AuditEntry, record
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.retention import prune_audit_events

log = logging.getLogger(__name__)

FIRST_ROUND_AFTER_SECONDS = 300.0  # let start-up (and its migrations) settle first
ROUND_EVERY_SECONDS = 6 * 3600.0
ACTOR = "gateway:retention"


@dataclass(frozen=True)
class PruneReport:
    audit_events: int
    cutoff: datetime | None


class Maintenance:
    def __init__(
        self,
        engine: AsyncEngine,
        state: SharedState,
        *,
        audit_retention_days: int,
        clock: Callable[[], datetime] = utcnow,
        first_round_after: float = FIRST_ROUND_AFTER_SECONDS,
        every: float = ROUND_EVERY_SECONDS,
    ) -> None:
        self._engine = engine
        self._state = state
        self._retention_days = audit_retention_days
        self._clock = clock
        self._first_round_after = first_round_after
        self._every = every

    async def run_once(self) -> PruneReport | None:
        """One round, unless another replica has claimed this period (then None)."""
        claim = secrets.token_bytes(16)
        if not await self._state.add("maintenance:prune", claim, self._every * 0.9):
            return None
        cutoff = None
        pruned = 0
        if self._retention_days > 0:
            cutoff = self._clock() - timedelta(days=self._retention_days)
            pruned = await prune_audit_events(self._engine, before=cutoff)
        if pruned:
            async with self._engine.begin() as connection:
                await record(
                    connection,
                    AuditEntry(
                        "audit_events.pruned",
                        ACTOR,
                        details={
                            "deleted": pruned,
                            "before": cutoff.isoformat() if cutoff else None,
                        },
                    ),
                )
        log.info("retention round", extra={"audit_events_deleted": pruned})
        return PruneReport(pruned, cutoff)

    async def run_forever(self) -> None:
        await asyncio.sleep(self._first_round_after)
        while True:
            try:
                await self.run_once()
            except Exception:  # a failed round (database down) must not end the loop
                log.warning("retention round failed; trying again next round", exc_info=True)
            await asyncio.sleep(self._every)
