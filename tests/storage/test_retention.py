"""Audit retention: events past GATEWAY_AUDIT_RETENTION_DAYS are pruned in the background,
in batches, by one replica per period; 0 keeps them forever. The clock is injected."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from provider_gateway.gateway import Gateway
from provider_gateway.maintenance import Maintenance
from provider_gateway.shared.state import SharedState
from provider_gateway.storage.retention import prune_audit_events
from provider_gateway.storage.schema import audit_events

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


async def _events(gateway: Gateway, count: int, occurred_at: datetime) -> None:
    row = {
        "occurred_at": occurred_at,
        "environment_id": None,
        "actor": "test",
        "action": "channel_data.set",
        "channel_id": None,
        "target": "objects/$tenants/acme",
        "details": {},
    }
    async with gateway.engine.begin() as connection:
        await connection.execute(audit_events.insert(), [row] * count)


async def _actions(gateway: Gateway) -> dict[str, int]:
    query = select(audit_events.c.action, func.count()).group_by(audit_events.c.action)
    async with gateway.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {action: int(count) for action, count in rows}


async def _count(gateway: Gateway) -> int:
    return sum((await _actions(gateway)).values())


async def test_events_past_retention_are_pruned_and_the_prune_is_audited(
    gateway: Gateway,
) -> None:
    await _events(gateway, 2500, NOW - timedelta(days=400))
    await _events(gateway, 10, NOW - timedelta(days=364))
    maintenance = Maintenance(
        gateway.engine, SharedState(None), audit_retention_days=365, clock=lambda: NOW
    )
    report = await maintenance.run_once()
    assert report is not None
    assert report.audit_events == 2500
    assert report.cutoff == NOW - timedelta(days=365)
    assert await _actions(gateway) == {"channel_data.set": 10, "audit_events.pruned": 1}
    latest = (await gateway.audit.recent(limit=1))[0]
    assert latest.entry.details == {"deleted": 2500, "before": report.cutoff.isoformat()}


async def test_pruning_goes_in_batches_oldest_first(gateway: Gateway) -> None:
    await _events(gateway, 30, NOW - timedelta(days=2))
    await _events(gateway, 5, NOW)
    assert await prune_audit_events(gateway.engine, before=NOW, batch_size=7) == 30
    assert await _count(gateway) == 5


async def test_retention_zero_keeps_everything(gateway: Gateway) -> None:
    await _events(gateway, 20, NOW - timedelta(days=3000))
    maintenance = Maintenance(
        gateway.engine, SharedState(None), audit_retention_days=0, clock=lambda: NOW
    )
    report = await maintenance.run_once()
    assert report is not None
    assert report.audit_events == 0
    assert await _count(gateway) == 20


async def test_one_replica_prunes_per_period(gateway: Gateway) -> None:
    shared = SharedState(None)  # what every replica reaches (Redis in production)
    replicas = [
        Maintenance(gateway.engine, shared, audit_retention_days=1, clock=lambda: NOW)
        for _ in range(3)
    ]
    await _events(gateway, 3, NOW - timedelta(days=2))
    reports = await asyncio.gather(*(replica.run_once() for replica in replicas))
    assert [report is not None for report in reports].count(True) == 1
    assert await _actions(gateway) == {"audit_events.pruned": 1}


async def test_the_background_loop_waits_for_start_up_then_repeats(gateway: Gateway) -> None:
    rounds: list[datetime] = []

    def clock() -> datetime:
        rounds.append(NOW)
        return NOW + timedelta(days=400 * len(rounds))  # each round, a year has passed

    maintenance = Maintenance(
        gateway.engine,
        SharedState(None),
        audit_retention_days=365,
        clock=clock,
        first_round_after=0.3,
        every=0.2,
    )
    await _events(gateway, 4, NOW)
    task = asyncio.create_task(maintenance.run_forever())
    try:
        await asyncio.sleep(0.1)
        assert rounds == []  # not during start-up
        assert await _count(gateway) == 4
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(rounds) >= 2:
                break
        assert len(rounds) >= 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "channel_data.set" not in await _actions(gateway)  # pruned by the first round
